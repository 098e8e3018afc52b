//go:build unix

package production

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
)

// The steps of the scenario that each rule set missing one rule runs, as
// an application in the namespace myApp would.
const (
	stepLock         = "LockNs(k)"
	stepExtend       = "Extend"
	stepUnlock       = "Unlock"
	stepFlushUnlock  = "Unlock after SCRIPT FLUSH"
	stepLockAll      = "LockAllNs(a, b)"
	stepUnlockAll    = "Unlock of LockAllNs"
	stepHolder       = "LockNs(w)"
	stepHolderUnlock = "Unlock of LockNs(w)"
	stepWaiter       = "LockNs(w), waiting"
)

// scenarioTTL is the ttl of the scenario's locks: what a failed Unlock
// leaves behind expires within it.
const scenarioTTL = 2 * time.Second

// waiterDelay is the waiter's retry delay: woken by the release
// announcement, it gets the key at once, well before its timer would
// have it try again.
const waiterDelay = 2 * time.Second

// errSkipped marks a step the scenario did not run, since the one it
// needs failed.
var errSkipped = errors.New("not run: an earlier step failed")

// outcome is what one scenario gave: each step's error (nil: it
// succeeded; errSkipped: not run), whether the waiter was woken by
// the release announcement rather than its timer, and the keys left.
type outcome struct {
	errs  map[string]error // errSkipped: not run
	woken bool
	left  []string
}

// scenario runs the steps as the lock's user, on masters whose script
// cache is empty, as a new deployment's is.
func scenario(t *testing.T, ss []*redistest.Server, conns []object) outcome {
	t.Helper()
	out := outcome{errs: map[string]error{}}
	for _, s := range ss {
		do(t, s, "SCRIPT", "FLUSH")
	}
	opts := object{"retryCount": 1, "retryDelay": 20, "retryJitter": 0, "nodeTimeout": ms(nodeTimeout)}
	l := create(t, parseConfig(t, conns, opts), docNamespace, nil)
	ctx := quick(t)
	run := func(step string, err error) bool {
		out.errs[step] = err
		return err == nil
	}
	skip := func(steps ...string) {
		for _, step := range steps {
			out.errs[step] = errSkipped
		}
	}

	if lk, err := l.LockNs(ctx, "k", scenarioTTL); run(stepLock, err) {
		_, err := lk.Extend(ctx, scenarioTTL)
		run(stepExtend, err)
		run(stepUnlock, lk.Unlock(ctx))
	} else {
		skip(stepExtend, stepUnlock)
	}
	if lk, err := l.LockNs(ctx, "k2", scenarioTTL); err == nil {
		for _, s := range ss {
			do(t, s, "SCRIPT", "FLUSH")
		}
		run(stepFlushUnlock, lk.Unlock(ctx))
	} else {
		skip(stepFlushUnlock)
	}
	if lk, err := l.LockAllNs(ctx, []string{"a", "b"}, scenarioTTL); run(stepLockAll, err) {
		run(stepUnlockAll, lk.Unlock(ctx))
	} else {
		skip(stepUnlockAll)
	}
	out.woken = wakeup(t, ss, conns, l, run, skip)
	out.left = keysWithTTL(t, ss)
	return out
}

// wakeup has a waiter of another Locker (another process, as far as the
// masters can tell) wait for a key the scenario's Locker holds, and
// reports whether the release announcement woke it: the waiter got the
// key well before its retry delay.
func wakeup(t *testing.T, ss []*redistest.Server, conns []object, holder lock.Locker,
	run func(string, error) bool, skip func(...string)) bool {
	t.Helper()
	ctx := quick(t)
	held, err := holder.LockNs(ctx, "w", 5*time.Second)
	if !run(stepHolder, err) {
		skip(stepHolderUnlock, stepWaiter)
		return false
	}
	refused := make(chan struct{}, 1)
	obs := lock.ObserverFunc(func(e lock.Event) {
		if e.Kind == lock.KindAttempt && e.Err != nil {
			select {
			case refused <- struct{}{}:
			default:
			}
		}
	})
	opts := object{"retryCount": 1, "retryDelay": ms(waiterDelay), "retryJitter": 0, "nodeTimeout": ms(nodeTimeout)}
	waiter := create(t, parseConfig(t, conns, opts), docNamespace, obs)
	got := make(chan error, 1)
	go func() {
		lk, err := waiter.LockNs(ctx, "w", time.Second)
		if err == nil {
			err = lk.Unlock(ctx)
		}
		got <- err
	}()
	select {
	case <-refused:
	case <-ctx.Done():
		t.Fatalf("the waiter's first attempt never ended")
	}
	// The waiter subscribes to the key's releases on every master, if it
	// may: wait (bounded) for that, so that the release is not announced
	// before anyone listens.
	channel := "lock:released:" + docNamespace + ":w"
	deadline := time.Now().Add(waiterDelay / 4)
	for time.Now().Before(deadline) && subscribers(t, ss, channel) < len(ss) {
		time.Sleep(5 * time.Millisecond)
	}
	released := time.Now()
	if !run(stepHolderUnlock, held.Unlock(ctx)) {
		skip(stepWaiter)
		return false
	}
	err = <-got
	waited := time.Since(released)
	run(stepWaiter, err)
	// Not woken, the waiter tries again once its delay has passed since
	// its first attempt, at least 3/4 of the delay after the release.
	return err == nil && waited < waiterDelay/2
}

// subscribers is how many of the servers have a subscriber on channel.
func subscribers(t testing.TB, ss []*redistest.Server, channel string) int {
	t.Helper()
	n := 0
	for _, s := range ss {
		v, err := redis.Values(do(t, s, "PUBSUB", "NUMSUB", channel), nil)
		require.NoError(t, err)
		if c, _ := redis.Int(v[1], nil); c > 0 {
			n++
		}
	}
	return n
}

// keysWithTTL lists every key of every server, as "i:key", failing t for a
// key that will not expire.
func keysWithTTL(t testing.TB, ss []*redistest.Server) []string {
	t.Helper()
	var out []string
	for i, s := range ss {
		keys, err := redis.Strings(do(t, s, "KEYS", "*"), nil)
		require.NoError(t, err)
		for _, key := range keys {
			if pttl, err := redis.Int64(do(t, s, "PTTL", key), nil); err != nil || pttl <= 0 {
				t.Errorf("key %q on %s: PTTL %d, %v: left for ever", key, s.Addr(), pttl, err)
			}
			out = append(out, fmt.Sprintf("%d:%s", i, key))
		}
	}
	slices.Sort(out)
	return out
}

// The server's replies a user without a rule gets.
const (
	replyKeyDenied    = "NOPERM this user has no permissions to access one of the keys used as arguments"
	replyScriptDenied = "ERR The user executing the script can't run this command or subcommand"
	replyNoScript     = "NOSCRIPT No matching script. Please use EVAL."
)

func replyCommandDenied(cmd string) string {
	return "NOPERM this user has no permissions to run the '" + cmd + "' command"
}

// refusal is what a step that fails must give: the sentinel it matches
// (ErrNotAcquired for a Lock, ErrNoQuorum for an Extend or Unlock) and the
// server's reply, which the error quotes for every master.
type refusal struct {
	err   error
	reply string
}

// needs says which step each step needs to have succeeded to run.
var needs = map[string]string{
	stepExtend:       stepLock,
	stepUnlock:       stepLock,
	stepFlushUnlock:  stepLock,
	stepUnlockAll:    stepLockAll,
	stepHolderUnlock: stepHolder,
	stepWaiter:       stepHolderUnlock,
}

var allSteps = []string{stepLock, stepExtend, stepUnlock, stepFlushUnlock, stepLockAll, stepUnlockAll, stepHolder, stepHolderUnlock, stepWaiter}

// minusOne is what a user whose rules lack one of the doc's gets.
type minusOne struct {
	drop   string             // the rule taken out
	fails  map[string]refusal // the steps that fail; every other one that runs succeeds
	woken  bool               // the waiter (when it ran) was woken by the release announcement
	left   []string           // keys left on every master, which expire with their ttl
	denied string             // what each master's ACL LOG shows denied: reason "object (a prefix)
	why    string
}

// minusOneCases cover every rule of the doc's line but the user's own
// (reset, on, the password), and the doc's lines "for now".
var minusOneCases = []minusOne{
	{drop: docKeys, denied: `key "myApp:`,
		fails: map[string]refusal{
			stepLock:    {lock.ErrNotAcquired, replyKeyDenied},
			stepLockAll: {lock.ErrNotAcquired, replyKeyDenied},
			stepHolder:  {lock.ErrNotAcquired, replyKeyDenied},
		},
		why: "every Lock is refused, after its retries"},
	{drop: "~lock:*", woken: true,
		why: "nothing here: the acquiring script names the marker and the counters (lock:*) only with restartDelay and fencing (TestACLOptions)"},
	{drop: "&lock:released:*", woken: false, denied: `channel "lock:released:myApp:`,
		why: "locks work; waiters are not woken by releases and wait for their retry delay"},
	{drop: "+set", denied: `command "set"`,
		fails: map[string]refusal{
			stepLock:    {lock.ErrNotAcquired, replyCommandDenied("set")},
			stepLockAll: {lock.ErrNotAcquired, replyScriptDenied},
			stepHolder:  {lock.ErrNotAcquired, replyCommandDenied("set")},
		},
		why: "every Lock is refused, after its retries"},
	{drop: "+get", denied: `command "get"`,
		fails: map[string]refusal{
			stepExtend:       {lock.ErrNoQuorum, replyScriptDenied},
			stepUnlock:       {lock.ErrNoQuorum, replyScriptDenied},
			stepFlushUnlock:  {lock.ErrNoQuorum, replyScriptDenied},
			stepUnlockAll:    {lock.ErrNoQuorum, replyScriptDenied},
			stepHolderUnlock: {lock.ErrNoQuorum, replyScriptDenied},
		},
		left: []string{"myApp:a", "myApp:b", "myApp:k", "myApp:k2", "myApp:w"},
		why:  "locks are taken, but Extend and Unlock fail: what was locked stays until its ttl runs out"},
	{drop: "+del", denied: `command "del"`,
		fails: map[string]refusal{
			stepUnlock:       {lock.ErrNoQuorum, replyScriptDenied},
			stepFlushUnlock:  {lock.ErrNoQuorum, replyScriptDenied},
			stepUnlockAll:    {lock.ErrNoQuorum, replyScriptDenied},
			stepHolderUnlock: {lock.ErrNoQuorum, replyScriptDenied},
		},
		left: []string{"myApp:a", "myApp:b", "myApp:k", "myApp:k2", "myApp:w"},
		why:  "Unlock fails: what was locked stays until its ttl runs out"},
	{drop: "+pexpire", woken: true, denied: `command "pexpire"`,
		fails: map[string]refusal{stepExtend: {lock.ErrNoQuorum, replyScriptDenied}},
		why:   "Extend fails; the lock keeps its old expiration"},
	{drop: "+exists", woken: true, denied: `command "exists"`,
		fails: map[string]refusal{stepLockAll: {lock.ErrNotAcquired, replyScriptDenied}},
		why:   "LockAll is refused"},
	{drop: "+evalsha", denied: `command "evalsha"`,
		fails: map[string]refusal{
			stepExtend:       {lock.ErrNoQuorum, replyCommandDenied("evalsha")},
			stepUnlock:       {lock.ErrNoQuorum, replyCommandDenied("evalsha")},
			stepFlushUnlock:  {lock.ErrNoQuorum, replyCommandDenied("evalsha")},
			stepLockAll:      {lock.ErrNotAcquired, replyCommandDenied("evalsha")},
			stepHolderUnlock: {lock.ErrNoQuorum, replyCommandDenied("evalsha")},
		},
		left: []string{"myApp:k", "myApp:k2", "myApp:w"},
		why:  "Lock on one key works, but Extend, Unlock and LockAll fail: what was locked stays until its ttl runs out"},
	{drop: "+eval", woken: true, denied: `command "eval"`,
		fails: map[string]refusal{stepFlushUnlock: {lock.ErrNoQuorum, replyCommandDenied("eval")}},
		left:  []string{"myApp:k2"},
		why:   "all works until the master loses its scripts (SCRIPT FLUSH): then Unlock and Extend fail, and what was locked stays until its ttl runs out"},
	{drop: "+script|load", woken: true, denied: `command "script|load"`,
		fails: map[string]refusal{stepLockAll: {lock.ErrNotAcquired, replyNoScript}},
		why:   "LockAll is refused while the master lacks the script; Extend and Unlock fall back to EVAL"},
	{drop: "+info", woken: true, denied: `command "info"`,
		why: "locks work, but the library learns nothing of the master: masters that are one server are not refused (TestSameServerWithoutINFO)"},
	{drop: "+publish", woken: false, denied: `command "publish"`,
		why: "locks work; releases are not announced, and waiters wait for their retry delay"},
	{drop: "+subscribe", woken: false, denied: `command "subscribe"`,
		why: "locks work; waiters cannot listen for releases, and wait for their retry delay"},
	{drop: "+unsubscribe", woken: true,
		why: "nothing seen here: UNSUBSCRIBE is sent only when a process stops waiting for one key while it still waits for another"},
	{drop: "+ping", woken: true,
		why: "nothing seen here: PING is sent once a second on a connection that listens for releases"},
}

// TestACLMinusOne runs one scenario (Lock, Extend, Unlock, an Unlock after
// SCRIPT FLUSH, LockAll, a waiter of another Locker) as a user with the
// doc's rules less one, and checks what the user sees: the failures are
// the ones expected, matching ErrNotAcquired or ErrNoQuorum, never
// ErrNotHeld, each master's error quoting the server's reply; the master's
// ACL LOG shows only that rule's denials; and what is left on the masters
// is what the failed Unlocks could not delete, all of it expiring.
func TestACLMinusOne(t *testing.T) {
	doc := docRules(t)
	ss := aclMasters(t)
	conns := userConnections(ss)
	full := doc.rules(nil)

	// Every rule of the doc's but the user's own has a case: a rule added
	// to the doc without one fails here.
	cases := map[string]minusOne{"": {woken: true, why: "all works"}}
	for _, c := range minusOneCases {
		cases[c.drop] = c
	}
	drops := []string{""}
	for _, rule := range full {
		if rule == "reset" || rule == "on" || strings.HasPrefix(rule, ">") {
			continue
		}
		_, ok := cases[rule]
		require.True(t, ok, "no case for a user without the rule %q of %s", rule, docFile)
		drops = append(drops, rule)
	}
	require.Len(t, drops, len(cases), "cases for rules that are not in %s", docFile)

	for _, drop := range drops {
		c := cases[drop]
		name := "without " + drop
		if drop == "" {
			name = "all rules"
		}
		t.Run(name, func(t *testing.T) {
			flush(t, ss)
			rules := full
			if drop != "" {
				rules = without(t, full, drop)
			}
			setUser(t, ss, rules)
			o := scenario(t, ss, conns)
			t.Logf("without %s: %s", drop, c.why)

			for _, step := range allSteps {
				err, ran := o.errs[step]
				want := c.fails[step]
				switch {
				case !ran:
					t.Errorf("%s: no outcome recorded", step)
				case errors.Is(err, errSkipped):
					pre := needs[step]
					if _, failed := c.fails[pre]; !failed && !errors.Is(o.errs[pre], errSkipped) {
						t.Errorf("%s not run although %s was expected to succeed", step, needs[step])
					}
				case want.err == nil:
					assert.NoError(t, err, "%s err = %v, want it to succeed", step, err)
				default:
					t.Logf("%s: %v", step, err)
					checkRefusal(t, ss, step, err, want)
				}
			}
			if o.errs[stepWaiter] == nil {
				assert.Equal(t, c.woken, o.woken, "the waiter woken by the release announcement")
			}

			var left []string
			for _, key := range c.left {
				for i := range ss {
					left = append(left, fmt.Sprintf("%d:%s", i, key))
				}
			}
			slices.Sort(left)
			assert.Equal(t, left, o.left, "keys left on the masters")

			denials := aclLog(t, ss)
			if c.denied != "" {
				assert.NotEmpty(t, denials, "ACL LOG shows nothing denied")
			}
			for _, d := range denials {
				if c.denied == "" || !strings.HasPrefix(fmt.Sprintf("%s %q", d.reason, d.object), c.denied) {
					t.Errorf("ACL LOG: %v; want only %s denied", d, c.denied)
				}
			}
		})
	}
}

// checkRefusal checks a failed step's error against what it should be.
func checkRefusal(t *testing.T, ss []*redistest.Server, step string, err error, want refusal) {
	t.Helper()
	if !assert.ErrorIs(t, err, want.err, "%s err = %v, want %v", step, err, want.err) {
		return
	}
	neverNotHeld(t, err, step)
	assert.NotErrorIs(t, err, lock.ErrUnreachable, "%s: a server's reply is not an unreachable master", step)
	assert.NotErrorIs(t, err, lock.ErrAuth, "%s: the credentials were accepted", step)
	for i, s := range ss {
		ne := nodeError(err, i)
		if !assert.NotNil(t, ne, "%s err = %v: no error for master %d (%s)", step, err, i, s.Addr()) {
			continue
		}
		assert.Equal(t, s.Addr(), ne.Addr, "%s: master %d", step, i)
		assert.Contains(t, ne.Error(), want.reply, "%s: master %d's error does not quote the server's reply", step, i)
	}
}
