package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/redlock"
)

// nodeTimeout is roomy: the race detector and the other test packages share
// two cores with the masters, and a healthy master must not time out.
const nodeTimeout = 250 * time.Millisecond

func newClient(t *testing.T, addrs []string, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	c, err := redlock.New(newPools(addrs), append([]redlock.Option{redlock.WithNodeTimeout(nodeTimeout), redlock.WithNodeNames(addrs...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy() })
	return c
}

// fault is one way to take a master out, and to bring it back.
type fault struct {
	name  string
	apply func(t *testing.T, m *integration.Master, p *integration.Proxy)
	heal  func(t *testing.T, m *integration.Master, p *integration.Proxy)
}

var faults = []fault{
	{"crashed (SIGKILL)",
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Kill(t.Context()))
		},
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Start(t.Context()))
		}},
	{"stopped",
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Stop(t.Context()))
		},
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Start(t.Context()))
		}},
	{"hung (docker pause)",
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Pause(t.Context()))
		},
		func(t *testing.T, m *integration.Master, _ *integration.Proxy) {
			require.NoError(t, m.Unpause(t.Context()))
		}},
	{"blackholed",
		func(t *testing.T, _ *integration.Master, p *integration.Proxy) { require.NoError(t, p.Blackhole()) },
		func(t *testing.T, _ *integration.Master, p *integration.Proxy) { require.NoError(t, p.Heal()) }},
	{"reset",
		func(t *testing.T, _ *integration.Master, p *integration.Proxy) { require.NoError(t, p.Reset()) },
		func(t *testing.T, _ *integration.Master, p *integration.Proxy) { require.NoError(t, p.Heal()) }},
}

// cycles runs n sequential Lock+Unlock cycles on distinct keys and returns
// each cycle's duration; every cycle must succeed.
func cycles(t *testing.T, c *redlock.Client, n int, prefix string) []time.Duration {
	t.Helper()
	ctx := t.Context()
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		lk, err := c.Lock(ctx, fmt.Sprint(prefix, i), 2*time.Second)
		require.NoError(t, err, "cycle %d", i)
		require.NoError(t, lk.Unlock(ctx), "cycle %d", i)
		out = append(out, time.Since(start))
	}
	return out
}

// TestMinorityFaults (scenario 2): with one of three (two of five) masters
// crashed, stopped, hung, blackholed or resetting, every acquisition still
// succeeds, and a cycle costs at most one node timeout more than healthy.
func TestMinorityFaults(t *testing.T) {
	for _, n := range []int{3, 5} {
		for _, f := range faults {
			t.Run(fmt.Sprintf("N=%d/%s", n, f.name), func(t *testing.T) {
				ms := masters(t, n)
				ps := shared.Cluster(t).Proxies(t)[:n]
				c := newClient(t, proxyAddrs(ps), redlock.WithRetryCount(0))
				healthy := cycles(t, c, soak(30), "healthy")
				bad := n - (n/2 + 1)
				for i := n - bad; i < n; i++ {
					f.apply(t, ms[i], ps[i])
				}
				faulty := cycles(t, c, soak(30), "faulty")
				for i := n - bad; i < n; i++ {
					f.heal(t, ms[i], ps[i])
				}
				extra := percentile(faulty, 0.5) - percentile(healthy, 0.5)
				worst := percentile(faulty, 1)
				report(t, "N=%d down=%d fault=%q cycles=%d ok=%d p50 healthy=%v faulty=%v extra=%v max=%v node-timeout=%v",
					n, bad, f.name, len(faulty), len(faulty), percentile(healthy, 0.5), percentile(faulty, 0.5), extra, worst, nodeTimeout)
				assert.LessOrEqual(t, extra, nodeTimeout, "median extra latency")
				assert.LessOrEqual(t, worst, nodeTimeout+percentile(healthy, 1)+50*time.Millisecond, "worst cycle")
			})
		}
	}
}

// TestMajorityFaults (scenario 3): with two of three masters down or cut
// off, Lock fails with ErrNotAcquired whose per-node detail says
// "unreachable" (not "taken"), within its attempts' node timeouts, and the
// surviving master holds nothing afterwards.
func TestMajorityFaults(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			ms := masters(t, 3)
			ps := shared.Cluster(t).Proxies(t)[:3]
			const attempts = 3
			retryDelay := 20 * time.Millisecond
			var observed atomic.Int32 // unreachable answers, as an observer sees them
			obs := lock.ObserverFunc(func(e lock.Event) {
				if e.Kind == lock.KindNode && errors.Is(e.Err, lock.ErrUnreachable) {
					observed.Add(1)
				}
			})
			c := newClient(t, proxyAddrs(ps), redlock.WithRetryCount(attempts-1), redlock.WithRetryDelay(retryDelay), redlock.WithRetryJitter(0),
				redlock.WithObserver(obs))
			for i := 1; i < 3; i++ {
				f.apply(t, ms[i], ps[i])
			}
			start := time.Now()
			_, err := c.Lock(t.Context(), "k", 2*time.Second)
			took := time.Since(start)
			for i := 1; i < 3; i++ {
				f.heal(t, ms[i], ps[i])
			}
			require.ErrorIs(t, err, lockerr.ErrNotAcquired)
			assert.ErrorIs(t, err, lock.ErrUnreachable)
			assert.NotErrorIs(t, err, lock.ErrTaken)
			var le *lock.Error
			require.ErrorAs(t, err, &le)
			assert.Equal(t, attempts, le.Attempts)
			unreachable := 0
			for _, ne := range le.Nodes {
				if errors.Is(ne, lock.ErrUnreachable) {
					unreachable++
				}
			}
			assert.Equal(t, 2, unreachable, "per-node detail: %v", err)
			assert.GreaterOrEqual(t, observed.Load(), int32(2*attempts), "the observer saw the down masters' answers")
			bound := attempts*(2*nodeTimeout) + (attempts-1)*retryDelay + 200*time.Millisecond
			assert.Less(t, took, bound, "Lock took too long")
			detail := err.Error()
			left, err := redis.Strings(ms[0].Do(t.Context(), "KEYS", "*"))
			require.NoError(t, err)
			assert.Empty(t, left, "the surviving master holds something")
			report(t, "N=3 down=2 fault=%q attempts=%d took=%v bound=%v survivor-keys=%d detail=%q",
				f.name, le.Attempts, took.Round(time.Millisecond), bound, len(left), detail)
		})
	}
}

// TestSlowMasterPastValidity (scenario 4): replies from two of three
// masters come back after the validity window (the keys landed at once):
// the acquisition is refused and released everywhere, well before the keys
// would have expired by themselves.
func TestSlowMasterPastValidity(t *testing.T) {
	ms := masters(t, 3)
	ps := shared.Cluster(t).Proxies(t)[:3]
	// ttl 10s with drift factor 0.99: a validity of 98ms, which 150ms of
	// reply latency overruns, while the keys would live for 10 seconds.
	c := newClient(t, proxyAddrs(ps), redlock.WithRetryCount(0), redlock.WithDriftFactor(0.99), redlock.WithNodeTimeout(time.Second))
	for _, p := range ps[1:] {
		require.NoError(t, p.Latency(150*time.Millisecond))
	}
	defer func() {
		for _, p := range ps {
			require.NoError(t, p.Heal())
		}
	}()
	start := time.Now()
	_, err := c.Lock(t.Context(), "k", 10*time.Second)
	refused := time.Since(start)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrNoValidity)
	var left []string
	assert.Eventually(t, func() bool {
		left = leftKeys(t, addrs(ms))
		return len(left) == 0
	}, 600*time.Millisecond, 5*time.Millisecond, "not released: %v", left)
	report(t, "N=3 slow=2 latency=150ms validity=98ms refused-after=%v all-keys-gone-after=%v (they would live 10s)",
		refused.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestSplitVotesEvenN (scenario 5): with N = 2 and 4, racers start at the
// same instant on one key, round after round: never two winners, and the
// rounds nobody wins (split votes) release everything.
func TestSplitVotesEvenN(t *testing.T) {
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			ms := masters(t, n)
			const racers = 4
			clients := make([]*redlock.Client, racers)
			for i := range clients {
				clients[i] = newClient(t, addrs(ms), redlock.WithRetryCount(0))
			}
			var rec safety.Recorder
			rounds, splits, doubles := soak(50), 0, 0
			for r := range rounds {
				key := fmt.Sprint("race", r)
				var (
					wg    sync.WaitGroup
					go_   = make(chan struct{})
					mu    sync.Mutex
					locks []*redlock.Lock
				)
				for i, c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-go_
						lk, err := c.Lock(t.Context(), key, 10*time.Second) // outlives the leak check
						if err == nil {
							start := safety.Mono()
							time.Sleep(2 * time.Millisecond)
							rec.Held(key, fmt.Sprint("racer", i), start, safety.Mono(), lk.Expiration())
							mu.Lock()
							locks = append(locks, lk)
							mu.Unlock()
						}
					}()
				}
				close(go_)
				wg.Wait()
				switch len(locks) {
				case 0:
					splits++
				case 1:
				default:
					doubles++
				}
				for _, lk := range locks {
					require.NoError(t, lk.Unlock(t.Context()))
				}
			}
			violations := safety.Check(rec.Windows())
			assert.Zero(t, doubles, "rounds with two winners")
			assert.Empty(t, violations)
			var left []string
			assert.Eventually(t, func() bool { left = leftKeys(t, addrs(ms)); return len(left) == 0 }, time.Second, 5*time.Millisecond, "left: %v", left)
			report(t, "N=%d racers=%d rounds=%d won=%d split=%d double-winners=%d violations=%d leaked-keys=%d",
				n, racers, rounds, rounds-splits, splits, doubles, len(violations), len(left))
		})
	}
}

// TestPausedHolder (scenario 6): a holder process is frozen (SIGSTOP) past
// its ttl; another client acquires after the expiry; the thawed holder's
// Extend and Unlock fail with ErrNotHeld and leave the new holder's key alone.
func TestPausedHolder(t *testing.T) {
	ms := masters(t, 3)
	ttl := 300 * time.Millisecond
	h := startHolder(t, holderSpec{Addrs: addrs(ms), Key: "k", TTL: ttl})
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	c := newClient(t, addrs(ms), redlock.WithRetryCount(-1), redlock.WithRetryDelay(10*time.Millisecond))
	lk, err := c.Lock(t.Context(), "k", 5*time.Second)
	require.NoError(t, err)
	acquired := safety.Mono()
	waited := time.Since(stopped)
	// The holder's SETs were sent after it read the clock (h.Before), so its
	// keys lived until at least h.Before + ttl (less Redis' 1ms precision).
	assert.GreaterOrEqual(t, acquired, h.Before+int64(ttl-2*time.Millisecond), "acquired before the frozen holder's keys expired")
	// The new holder's key is on a quorum, not necessarily on every master:
	// its attempt may have found the frozen holder's key on one master a
	// moment before it expired there (the holder's SETs reach its masters
	// at slightly different times).
	holding := func() []int {
		var out []int
		for i, m := range ms {
			v, err := redis.String(m.Do(t.Context(), "GET", "k"))
			if err == nil && v == lk.Value() {
				out = append(out, i)
			}
		}
		return out
	}
	before := holding()
	require.GreaterOrEqual(t, len(before), 2, "the new holder's key is on fewer masters than a quorum")
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGCONT))
	extend, unlock := h.goOn(t)
	assert.Contains(t, extend, "not held", "the thawed holder's Extend")
	assert.Contains(t, unlock, "not held", "the thawed holder's Unlock")
	after := holding()
	assert.Equal(t, before, after, "masters holding the new holder's key, before and after the thawed holder's Extend and Unlock")
	require.NoError(t, lk.Unlock(t.Context()))
	report(t, "N=3 ttl=%v new-holder-after=%v thawed-extend=%q thawed-unlock=%q new-holder-keys-intact=%d/%d",
		ttl, waited.Round(time.Millisecond), extend, unlock, len(after), len(before))
}

// TestKilledHolder (scenario 10): a client process killed while holding;
// the next acquisition succeeds within the ttl plus one retry delay.
func TestKilledHolder(t *testing.T) {
	ms := masters(t, 3)
	ttl := 500 * time.Millisecond
	retryDelay := 20 * time.Millisecond
	h := startHolder(t, holderSpec{Addrs: addrs(ms), Key: "k", TTL: ttl})
	acquiredAt := time.Now() // a little after the holder's acquisition
	require.NoError(t, h.cmd.Process.Kill())
	c := newClient(t, addrs(ms), redlock.WithRetryCount(-1), redlock.WithRetryDelay(retryDelay), redlock.WithRetryJitter(0))
	lk, err := c.Lock(t.Context(), "k", time.Second)
	require.NoError(t, err)
	took := time.Since(acquiredAt)
	// Slack for dialing and a few attempts under the race detector.
	assert.LessOrEqual(t, took, ttl+retryDelay+400*time.Millisecond)
	require.NoError(t, lk.Unlock(t.Context()))
	report(t, "N=3 ttl=%v retry-delay=%v next-acquisition-after=%v", ttl, retryDelay, took.Round(time.Millisecond))
}

func proxyAddrs(ps []*integration.Proxy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}

// TestCancelUnderFaults (scenario 9): Lock is retrying against a blackholed
// master and a taken one when the caller cancels, in the middle of an
// attempt and in the middle of a retry wait: it returns within about a node
// timeout, with an error matching both ErrNotAcquired and context.Canceled,
// and the master that said yes holds nothing afterwards. The package's
// goroutine-leak check runs after every test.
func TestCancelUnderFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryDelay time.Duration
		cancelAt   time.Duration
	}{
		// The first attempt waits a node timeout (250ms) on the blackholed
		// master: a cancel at 150ms lands in it.
		{"mid-attempt", time.Millisecond, 150 * time.Millisecond},
		// A cancel at 1s lands in the 5s wait after the first attempt.
		{"mid-retry-wait", 5 * time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := masters(t, 3)
			ps := shared.Cluster(t).Proxies(t)[:3]
			_, err := ms[0].Do(t.Context(), "SET", "k", "another-owner", "PX", 10_000)
			require.NoError(t, err)
			require.NoError(t, ps[2].Blackhole())
			defer func() { require.NoError(t, ps[2].Heal()) }()
			c := newClient(t, proxyAddrs(ps), redlock.WithRetryCount(-1), redlock.WithRetryDelay(tc.retryDelay), redlock.WithRetryJitter(0))
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(tc.cancelAt, cancel)
			start := time.Now()
			_, err = c.Lock(ctx, "k", 2*time.Second)
			late := time.Since(start) - tc.cancelAt
			require.ErrorIs(t, err, lockerr.ErrNotAcquired)
			assert.ErrorIs(t, err, context.Canceled)
			bound := 2*nodeTimeout + 50*time.Millisecond
			if tc.retryDelay > time.Second {
				bound = 100 * time.Millisecond // the wait itself must end at once
			}
			assert.Less(t, late, bound, "returned long after the cancel")
			v, err := redis.String(ms[1].Do(t.Context(), "GET", "k"))
			assert.ErrorIs(t, err, redis.ErrNil, "master 1 kept %q", v)
			report(t, "N=3 blackholed=1 taken=1 returned-after-cancel=%v", late.Round(time.Millisecond))
		})
	}
}

// TestLostReplyReleased: a SET that lands while its reply is lost (the
// proxy holds master 0's replies far past the node timeout) is released all
// the same when the attempt fails, long before the key would expire.
func TestLostReplyReleased(t *testing.T) {
	ms := masters(t, 3)
	ps := shared.Cluster(t).Proxies(t)[:3]
	for _, m := range ms[1:] {
		_, err := m.Do(t.Context(), "SET", "k", "another-owner", "PX", 10_000)
		require.NoError(t, err)
	}
	require.NoError(t, ps[0].Latency(5*time.Second))
	defer func() { require.NoError(t, ps[0].Heal()) }()
	c := newClient(t, []string{ps[0].Addr(), ms[1].Addr(), ms[2].Addr()}, redlock.WithRetryCount(0))
	_, err := c.Lock(t.Context(), "k", 10*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrUnreachable, "master 0's reply was lost")
	assert.Eventually(t, func() bool {
		n, err := redis.Int(ms[0].Do(t.Context(), "EXISTS", "k"))
		return err == nil && n == 0
	}, time.Second, 5*time.Millisecond, "the SET whose reply was lost was not released")
}

// TestLostRepliesOfMajorityReleased: with the replies of two masters of
// three held far past the node timeout (their SETs land) and the third
// holding the key for another owner, the attempt can only be decided when
// the node timeout ends, just as the connections to the two give up on
// their replies. The deletes written then still reach both masters (over
// new connections when the old ones closed under them), on a Client's
// first attempt as on a later one: otherwise the key would stay on two
// masters of three, a quorum, for its whole ttl.
func TestLostRepliesOfMajorityReleased(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			ms := masters(t, 3)
			ps := shared.Cluster(t).Proxies(t)[:3]
			_, err := ms[2].Do(t.Context(), "SET", "k", "another-owner", "PX", 10_000)
			require.NoError(t, err)
			c := newClient(t, []string{ps[0].Addr(), ps[1].Addr(), ms[2].Addr()}, redlock.WithRetryCount(0))
			if warm {
				l, err := c.Lock(t.Context(), "warm-up", 10*time.Second)
				require.NoError(t, err)
				require.NoError(t, l.Unlock(t.Context()))
			}
			for _, p := range ps[:2] {
				require.NoError(t, p.Latency(5*time.Second))
			}
			defer func() {
				for _, p := range ps[:2] {
					require.NoError(t, p.Heal())
				}
			}()
			_, err = c.Lock(t.Context(), "k", 10*time.Second)
			require.ErrorIs(t, err, lockerr.ErrNotAcquired)
			for i, m := range ms[:2] {
				assert.Eventually(t, func() bool {
					n, err := redis.Int(m.Do(t.Context(), "EXISTS", "k"))
					return err == nil && n == 0
				}, time.Second, 5*time.Millisecond, "master %d kept the key whose SET's reply was lost", i)
			}
		})
	}
}
