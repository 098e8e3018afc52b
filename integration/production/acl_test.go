//go:build unix

package production

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration/conformance"
	"github.com/leverege/lock/internal/redistest"
)

// The ACL rule set is read from docs/configuration.md, section "ACL users",
// so that the documentation cannot drift from what these tests prove. The
// section holds a code block whose first line is the rule set every lock
// needs:
//
//	ACL SETUSER locker reset on >PASSWORD ~myApp:* ~lock:* &lock:released:* +set ...
//
// and whose other lines ("ACL SETUSER locker ...") are needed for now, and
// a table of what some options add:
//
//	| `restartDelay` | `ACL SETUSER locker +time` |
const (
	docFile      = "../../docs/configuration.md"
	docSection   = "## ACL users"
	aclPrefix    = "ACL SETUSER locker "
	docPassword  = ">PASSWORD"
	docKeys      = "~myApp:*"
	docNamespace = "myApp"
	aclUser      = "locker"
	aclPassword  = "locker-pw"
)

// The options the doc's table names, as it names them.
const (
	withRestartDelay = "restartDelay"
	withReplicaAcks  = "replicaAcks"
	withDB           = "a db other than 0"
	withFencing      = "fencing"
)

// aclRules is the doc's rule set.
type aclRules struct {
	base   []string            // the first line: reset on >PASSWORD ~myApp:* ...
	always [][]string          // the code block's other lines
	with   map[string][]string // the table: option → rules (none: needs nothing more)
	// exact leaves out the code block's other lines: the rule set the
	// library is meant to need.
	exact bool
}

// meant is the rule set the library is meant to need, without the lines
// the doc says are needed for now only.
func (r aclRules) meant() aclRules {
	r.exact = true
	return r
}

// docRules reads the rule set out of docs/configuration.md.
func docRules(t testing.TB) aclRules {
	t.Helper()
	raw, err := os.ReadFile(filepath.FromSlash(docFile))
	require.NoError(t, err)
	doc := string(raw)
	start := strings.Index(doc, "\n"+docSection+"\n")
	require.GreaterOrEqual(t, start, 0, "%s has no section %q", docFile, docSection)
	section := doc[start+1:]
	if end := strings.Index(section[len(docSection):], "\n## "); end >= 0 {
		section = section[:len(docSection)+end]
	}
	r := aclRules{with: map[string][]string{}}
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, aclPrefix):
			rules := strings.Fields(strings.TrimPrefix(line, aclPrefix))
			if r.base == nil {
				r.base = rules
			} else {
				r.always = append(r.always, rules)
			}
		case strings.HasPrefix(line, "|") && strings.Count(line, "|") == 3:
			cells := strings.Split(line, "|")
			option := strings.TrimSpace(strings.ReplaceAll(cells[1], "`", ""))
			add := strings.TrimSpace(strings.ReplaceAll(cells[2], "`", ""))
			switch {
			case strings.HasPrefix(add, aclPrefix):
				r.with[option] = strings.Fields(strings.TrimPrefix(add, aclPrefix))
			case add == "nothing":
				r.with[option] = nil
			}
		}
	}
	require.NotNil(t, r.base, "%s, section %q: no line %q", docFile, docSection, aclPrefix+"...")
	for _, want := range []string{"reset", "on", docPassword, docKeys} {
		require.Contains(t, r.base, want, "%s: the rule line %q lacks %q", docFile, r.base, want)
	}
	for _, option := range []string{withRestartDelay, withReplicaAcks, withDB, withFencing} {
		_, ok := r.with[option]
		require.True(t, ok, "%s, section %q: the table does not say what %q adds", docFile, docSection, option)
	}
	return r
}

// rules is the rule set for a user with password aclPassword whose lock
// keys match keys (nil: the doc's own ~myApp:*), with what the options add.
func (r aclRules) rules(keys []string, options ...string) []string {
	var out []string
	for _, rule := range r.base {
		switch {
		case rule == docPassword:
			out = append(out, ">"+aclPassword)
		case rule == docKeys && keys != nil:
			out = append(out, keys...)
		default:
			out = append(out, rule)
		}
	}
	if !r.exact {
		for _, more := range r.always {
			out = append(out, more...)
		}
	}
	for _, o := range options {
		out = append(out, r.with[o]...)
	}
	return out
}

// without is rules with the rule drop taken out; it fails t if there is no
// such rule.
func without(t testing.TB, rules []string, drop string) []string {
	t.Helper()
	i := slices.Index(rules, drop)
	require.GreaterOrEqual(t, i, 0, "no rule %q in %q", drop, rules)
	return slices.Delete(slices.Clone(rules), i, i+1)
}

// setUser makes the lock's user on every server with exactly rules, and
// empties their ACL logs.
func setUser(t testing.TB, ss []*redistest.Server, rules []string) {
	t.Helper()
	for _, s := range ss {
		require.NoError(t, s.SetUser(t.Context(), aclUser, rules...), "ACL SETUSER %s %q on %s", aclUser, rules, s.Addr())
	}
	resetACLLog(t, ss)
}

// resetACLLog empties every server's ACL LOG.
func resetACLLog(t testing.TB, ss []*redistest.Server) {
	t.Helper()
	for _, s := range ss {
		do(t, s, "ACL", "LOG", "RESET")
	}
}

// aclDenial is one entry of ACL LOG.
type aclDenial struct {
	server                        string
	reason, context, object, user string
	count                         int64
}

func (d aclDenial) String() string {
	return fmt.Sprintf("%s: %s denied %s %q (in %s) %d times", d.server, d.user, d.reason, d.object, d.context, d.count)
}

// aclLog lists what every server's ACL LOG holds: each command, key or
// channel it denied.
func aclLog(t testing.TB, ss []*redistest.Server) []aclDenial {
	t.Helper()
	var out []aclDenial
	for _, s := range ss {
		entries, err := redis.Values(do(t, s, "ACL", "LOG"), nil)
		require.NoError(t, err)
		for _, e := range entries {
			kv, err := redis.Values(e, nil)
			require.NoError(t, err, "ACL LOG entry %v", e)
			fields := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				name, _ := redis.String(kv[i], nil)
				fields[name] = kv[i+1]
			}
			text := func(name string) string { s, _ := redis.String(fields[name], nil); return s }
			count, _ := redis.Int64(fields["count"], nil)
			out = append(out, aclDenial{server: s.Addr(), reason: text("reason"), context: text("context"),
				object: text("object"), user: text("username"), count: count})
		}
	}
	return out
}

// noDenials fails t if any server denied the lock's user anything: what
// the library asked was all within the rules (a denied SUBSCRIBE or
// PUBLISH would otherwise go unseen, its waiters falling back to their
// timed retries).
func noDenials(t testing.TB, ss []*redistest.Server) {
	t.Helper()
	for _, d := range aclLog(t, ss) {
		t.Errorf("ACL LOG: %v", d)
	}
}

// suiteKeys are key patterns for the keys the conformance suite locks (k,
// u0, retry1, app:k, ...): in its runs they stand for the doc's ~myApp:*,
// the user's own keys. A key added to the suite and not matched here shows
// in the ACL LOG as a denied key.
var suiteKeys = []string{
	"~?", "~??", "~app:*", "~retry?",
	"~gone", "~cancelled", "~exp", "~taken", "~free", "~other", "~counter",
	"~kept", "~lost", "~fails", "~busy", "~solo",
}

// aclMasters starts three masters whose default user is off, as managed
// services have them: every connection must AUTH as a named user.
func aclMasters(t *testing.T) []*redistest.Server {
	t.Helper()
	ss := make([]*redistest.Server, 3)
	for i := range ss {
		ss[i] = redistest.StartServer(t, redistest.WithDefaultUserOff())
	}
	return ss
}

// userConnections are JSON connections to ss as the lock's ACL user.
func userConnections(ss []*redistest.Server) []object {
	conns := make([]object, len(ss))
	for i, s := range ss {
		conns[i] = with(hostPort(s), object{"username": aclUser, "password": aclPassword})
	}
	return conns
}

// TestACL runs the conformance suite as an ACL user with exactly the rules
// of docs/configuration.md, plain and with restartDelay and fencing, and
// checks that no master denied it anything.
func TestACL(t *testing.T) {
	doc := docRules(t)
	ss := aclMasters(t)
	conns := userConnections(ss)

	t.Run("Conformance", func(t *testing.T) {
		rules := doc.rules(suiteKeys)
		t.Logf("ACL SETUSER %s %s", aclUser, strings.Join(rules, " "))
		setUser(t, ss, rules)
		conformance.Run(t, backend(ss, false, func(t *testing.T, o conformance.Opts) *config.Config {
			return parseConfig(t, conns, lockOptions(o))
		}))
		noDenials(t, ss)
	})

	t.Run("ConformanceRestartDelayFencing", func(t *testing.T) {
		rules := doc.rules(suiteKeys, withRestartDelay, withFencing)
		t.Logf("ACL SETUSER %s %s", aclUser, strings.Join(rules, " "))
		setUser(t, ss, rules)
		waitUptime(t, ss, restartDelay)
		conformance.Run(t, backend(ss, true, func(t *testing.T, o conformance.Opts) *config.Config {
			lo := lockOptions(o)
			lo["restartDelay"] = ms(restartDelay)
			return parseConfig(t, conns, lo)
		}))
		noDenials(t, ss)
	})
}

// TestACLEmptyKeyName: the lock's user needs access to its own keys and
// to lock:*, nothing more. The acquiring script, which runs for LockAll and
// for every Lock with restartDelay, named its fencing counter among its
// KEYS even with fencing off, as "": Redis checks every key a command names
// against the user's patterns, and denied the empty one (at 684d808 both
// calls were refused on every master with "NOPERM this user has no
// permissions to access one of the keys used as arguments", and ACL LOG
// showed key "" denied). The script now names only the keys it uses.
func TestACLEmptyKeyName(t *testing.T) {
	const delay = time.Second // the restart protection; the ttls below are within it
	doc := docRules(t).meant()
	ss := aclMasters(t)
	conns := userConnections(ss)
	setUser(t, ss, doc.rules(nil, withRestartDelay))
	waitUptime(t, ss, delay)
	seedMarkers(t, ss)

	for _, tc := range []struct {
		name         string
		restartDelay time.Duration
		lock         func(ctx context.Context, l lock.Locker) (lock.Lock, error)
	}{
		{"LockAllNs", 0, func(ctx context.Context, l lock.Locker) (lock.Lock, error) {
			return l.LockAllNs(ctx, []string{"a", "b"}, delay/2)
		}},
		{"LockNs with restartDelay", delay, func(ctx context.Context, l lock.Locker) (lock.Lock, error) {
			return l.LockNs(ctx, "k", delay/2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetACLLog(t, ss)
			l := create(t, parseConfig(t, conns, object{"retryCount": 0, "nodeTimeout": ms(nodeTimeout), "restartDelay": ms(tc.restartDelay)}), docNamespace, nil)
			lk, err := tc.lock(quick(t), l)
			if assert.NoError(t, err, "%s as the user with the rules %q", tc.name, doc.rules(nil, withRestartDelay)) {
				assert.NoError(t, lk.Unlock(quick(t)), "Unlock")
			}
			noDenials(t, ss)
		})
	}
}
