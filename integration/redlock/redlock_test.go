package redlock_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/integration/conformance"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/redlock"
)

// The package's Redis tests share five real masters, started on first use
// (so the pure-logic tests run without Docker); a test that needs N masters
// uses the first N and flushes them first.
var shared = integration.Shared{N: 5}

func masters(t testing.TB, n int) []*integration.Master {
	return shared.Cluster(t).Masters[:n]
}

func TestMain(m *testing.M) {
	if !brokenBuilt {
		fmt.Fprintln(os.Stderr, "redlock's tests show broken variants caught: run them with -tags lockbroken (make test does)")
		os.Exit(2)
	}
	os.Exit(shared.Main(m))
}

// testNodeTimeout is roomier than the default: the race detector on two
// shared cores slows every round trip.
const testNodeTimeout = 250 * time.Millisecond

func flush(t *testing.T, n int) {
	t.Helper()
	for _, m := range masters(t, n) {
		_, err := m.Do(t.Context(), "FLUSHALL")
		require.NoError(t, err)
	}
}

// keys lists every key on the first n masters, as "i:key", but for the
// restart protection's marker.
func keys(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i, m := range masters(t, n) {
		ks, err := redis.Strings(m.Do(t.Context(), "KEYS", "*"))
		require.NoError(t, err)
		for _, k := range ks {
			if k != redlock.MarkerKey && !strings.HasPrefix(k, redlock.FenceKeyPrefix) { // kept by design
				out = append(out, fmt.Sprintf("%d:%s", i, k))
			}
		}
	}
	return out
}

// noKeys fails when the first n masters still hold a key a moment later
// (Unlock returns once a quorum has deleted; the other deletes are still on
// their way).
func noKeys(t *testing.T, n int, msgAndArgs ...any) {
	t.Helper()
	var left []string
	if !assert.Eventually(t, func() bool { left = keys(t, n); return len(left) == 0 }, time.Second, 5*time.Millisecond, msgAndArgs...) {
		t.Logf("keys left: %v", left)
	}
}

// redisConfig is what a user would write in LOCK_CONFIG for the first n
// masters.
func redisConfig(t testing.TB, n int, o conformance.Opts) *config.Config {
	lo := config.DefaultLockOptions()
	lo.RetryCount, lo.RetryDelay, lo.RetryJitter, lo.NodeTimeout, lo.Fencing = o.Retry, o.Delay, 0, testNodeTimeout, o.Fencing
	cfg := &config.Config{Type: config.Redis, LockOptions: lo}
	for _, m := range masters(t, n) {
		host, port, _ := strings.Cut(m.Addr(), ":")
		p, _ := strconv.Atoi(port)
		cfg.Connections = append(cfg.Connections, config.Connection{Host: host, Port: p})
	}
	return cfg
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		n       int
		protect bool // with the restart protection (acquire by script)
	}{{1, false}, {3, false}, {5, false}, {3, true}} {
		t.Run(fmt.Sprintf("N=%d,restartDelay=%v", tc.n, tc.protect), func(t *testing.T) {
			n := tc.n
			conformance.Run(t, conformance.Backend{
				Masters: n,
				New: func(t *testing.T, o conformance.Opts) lock.Locker {
					cfg := redisConfig(t, n, o)
					if tc.protect {
						cfg.LockOptions.RestartDelay = 6 * time.Second
					}
					l, err := lock.Create(lock.Options{Namespace: o.Namespace, Observer: o.Observer, LockConfig: cfg})
					require.NoError(t, err)
					return l
				},
				Plant: func(t *testing.T, _ lock.Locker, i int, key string, ttl time.Duration) {
					_, err := masters(t, n)[i].Do(t.Context(), "SET", key, "another-owner", "PX", ttl.Milliseconds())
					require.NoError(t, err)
				},
				Keys: func(t *testing.T) []string { return keys(t, n) },
				Reset: func(t *testing.T) {
					flush(t, n)
					if tc.protect {
						seedMarkers(t, n)
						waitUptime(t, n, 6*time.Second)
					}
				},
			})
		})
	}
}

// seedMarkers makes the first n masters look as if they had kept their data
// for an hour, so that the restart protection lets them vote.
func seedMarkers(t *testing.T, n int) {
	t.Helper()
	for _, m := range masters(t, n) {
		now, err := redis.Int64s(m.Do(t.Context(), "TIME"))
		require.NoError(t, err)
		_, err = m.Do(t.Context(), "SET", redlock.MarkerKey, now[0]*1000-3_600_000)
		require.NoError(t, err)
	}
}

func pools(addrs ...string) []*redis.Pool {
	ps := make([]*redis.Pool, len(addrs))
	for i, a := range addrs {
		ps[i] = &redis.Pool{MaxIdle: 4, DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", a)
		}}
	}
	return ps
}

func newClient(t *testing.T, addrs []string, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	c, err := redlock.New(pools(addrs...), append([]redlock.Option{redlock.WithNodeTimeout(testNodeTimeout), redlock.WithNodeNames(addrs...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy() })
	return c
}

// deadAddr is a loopback port with nothing listening.
func deadAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:1"
}

func TestNewRejectsBadOptions(t *testing.T) {
	p := pools("127.0.0.1:1")
	for _, tc := range []struct {
		name  string
		pools []*redis.Pool
		opts  []redlock.Option
		want  string
	}{
		{"no pools", nil, nil, "pools"},
		{"nil pool", []*redis.Pool{nil}, nil, "pool 0 is nil"},
		{"drift 1", p, []redlock.Option{redlock.WithDriftFactor(1)}, "drift factor"},
		{"drift negative", p, []redlock.Option{redlock.WithDriftFactor(-0.1)}, "drift factor"},
		{"negative delay", p, []redlock.Option{redlock.WithRetryDelay(-1)}, "retry delay"},
		{"negative jitter", p, []redlock.Option{redlock.WithRetryJitter(-1)}, "retry jitter"},
		{"zero node timeout", p, []redlock.Option{redlock.WithNodeTimeout(0)}, "node timeout"},
		{"names", p, []redlock.Option{redlock.WithNodeNames("a", "b")}, "node names"},
	} {
		_, err := redlock.New(tc.pools, tc.opts...)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

func TestQuorum(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = deadAddr(t)
		}
		assert.Equal(t, want, newClient(t, addrs).Quorum(), "N=%d", n)
	}
}

// TestTTLWithinDrift refuses, before any I/O, a ttl that leaves no
// validity once the drift allowance is taken off.
func TestTTLWithinDrift(t *testing.T) {
	flush(t, 1)
	c := newClient(t, []string{masters(t, 1)[0].Addr()})
	for _, ttl := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 2*time.Millisecond + 900*time.Microsecond} {
		_, err := c.Lock(t.Context(), "k", ttl)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "ttl %v", ttl)
		assert.Contains(t, err.Error(), "drift")
	}
	c = newClient(t, []string{masters(t, 1)[0].Addr()}, redlock.WithDriftFactor(0.5))
	_, err := c.Lock(t.Context(), "k", 4*time.Millisecond)
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "drift 0.5 of 4ms is 2ms, +2ms")
	noKeys(t, 1)
}

// TestUnreachableMinority: with one of three masters down, locks work and
// the dead one is reported only on failure paths.
func TestUnreachableMinority(t *testing.T) {
	flush(t, 2)
	ctx := t.Context()
	addrs := []string{masters(t, 2)[0].Addr(), deadAddr(t), masters(t, 2)[1].Addr()}
	c := newClient(t, addrs, redlock.WithRetryCount(0))
	lk, err := c.Lock(ctx, "k", time.Second)
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(ctx))
	noKeys(t, 2)

	// Hold it on one live master: now no quorum is possible.
	_, err = masters(t, 2)[1].Do(ctx, "SET", "k", "other", "PX", 5000)
	require.NoError(t, err)
	_, err = c.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrUnreachable)
	assert.ErrorIs(t, err, lock.ErrTaken)
	assert.Contains(t, err.Error(), "127.0.0.1:1", "names the dead master")
	assert.Equal(t, []string{"1:k"}, keys(t, 2), "the refused attempt left its key on master 0")
}

// TestUnreachableMajority: with two of three down, Lock fails fast with
// "unreachable" (not "taken") and leaves nothing on the survivor.
func TestUnreachableMajority(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	c := newClient(t, []string{deadAddr(t), masters(t, 1)[0].Addr(), deadAddr(t)}, redlock.WithRetryCount(2), redlock.WithRetryDelay(time.Millisecond))
	_, err := c.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrUnreachable)
	assert.NotErrorIs(t, err, lock.ErrTaken)
	var le *lock.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 3, le.Attempts)
	require.Len(t, le.Nodes, 2)
	assert.Equal(t, []int{0, 2}, []int{le.Nodes[0].Node, le.Nodes[2-1].Node})
	noKeys(t, 1, "the survivor holds nothing")
}

// TestWrongType: a key of another Redis type is another owner's: SET NX is
// refused (taken), and Extend and Unlock report it as not held and leave
// it alone, without a server error and without retrying forever.
func TestWrongType(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	m := masters(t, 1)[0]
	_, err := m.Do(ctx, "HSET", "h", "f", "v")
	require.NoError(t, err)
	c := newClient(t, []string{m.Addr()}, redlock.WithRetryCount(1), redlock.WithRetryDelay(time.Millisecond))
	_, err = c.Lock(ctx, "h", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrTaken, "SET NX on an existing key of any type is refused")

	// The key is replaced by a hash while we hold it.
	lk, err := c.Lock(ctx, "s", time.Second)
	require.NoError(t, err)
	_, err = m.Do(ctx, "DEL", "s")
	require.NoError(t, err)
	_, err = m.Do(ctx, "HSET", "s", "f", "v")
	require.NoError(t, err)
	_, err = lk.Extend(ctx, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	err = lk.Unlock(ctx)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	assert.ErrorIs(t, err, lock.ErrNotHeldHere)
	assert.NotContains(t, err.Error(), "WRONGTYPE")
	n, err := redis.Int(m.Do(ctx, "HLEN", "s"))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the other key is untouched")
}

// TestServerErrorReply: a master that answers with an error (here OOM,
// from a master out of memory under noeviction) is neither "taken" nor
// "down": its error reply is kept, and Lock gives up after its attempts.
func TestServerErrorReply(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	m := masters(t, 1)[0]
	_, err := m.Do(ctx, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	require.NoError(t, err)
	_, err = m.Do(ctx, "CONFIG", "SET", "maxmemory", "1")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = m.Do(context.Background(), "CONFIG", "SET", "maxmemory", "0")
	})
	c := newClient(t, []string{m.Addr()}, redlock.WithRetryCount(2), redlock.WithRetryDelay(time.Millisecond))
	_, err = c.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.Contains(t, err.Error(), "OOM")
	assert.NotErrorIs(t, err, lock.ErrUnreachable)
	assert.NotErrorIs(t, err, lock.ErrTaken)
	assert.NotErrorIs(t, err, lock.ErrAuth)
	var le *lock.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 3, le.Attempts)
}

// TestAuthRefusedAtOnce: a master that refuses this client (here NOAUTH,
// from a connection that skipped AUTH) is a configuration error: its
// per-master error matches ErrAuth, not ErrUnreachable, and a Lock that
// cannot reach a quorum for that reason fails at once, without its retries.
func TestAuthRefusedAtOnce(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	m := masters(t, 1)[0]
	_, err := m.Do(ctx, "CONFIG", "SET", "requirepass", "secret")
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := redis.DialContext(context.Background(), "tcp", m.Addr(), redis.DialPassword("secret"))
		if err == nil {
			_, _ = conn.Do("CONFIG", "SET", "requirepass", "")
			conn.Close()
		}
	})
	c := newClient(t, []string{m.Addr()}, redlock.WithRetryCount(5), redlock.WithRetryDelay(time.Second))
	began := time.Now()
	_, err = c.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrAuth)
	assert.ErrorIs(t, err, lock.ErrNoQuorum, "too few masters could vote")
	assert.Contains(t, err.Error(), "NOAUTH")
	assert.NotErrorIs(t, err, lock.ErrUnreachable)
	var le *lock.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 1, le.Attempts, "retried a configuration error")
	assert.Less(t, time.Since(began), time.Second, "waited for a retry delay")
}

// TestScriptReload: after SCRIPT FLUSH (as after a restart) EVALSHA fails
// with NOSCRIPT and the scripts are sent again.
func TestScriptReload(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	c := newClient(t, []string{masters(t, 1)[0].Addr()})
	lk, err := c.Lock(ctx, "k", time.Second)
	require.NoError(t, err)
	_, err = masters(t, 1)[0].Do(ctx, "SCRIPT", "FLUSH")
	require.NoError(t, err)
	lk, err = lk.Extend(ctx, time.Second)
	require.NoError(t, err)
	_, err = masters(t, 1)[0].Do(ctx, "SCRIPT", "FLUSH")
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(ctx))
	noKeys(t, 1)

	// The restart-protected acquisition is a script too. After a flush its
	// first attempt fails on that master (the script did not run, and it is
	// not sent again, as it could run after the release of a failed
	// attempt); the scripts are loaded again, and the retry wins.
	m := masters(t, 1)[0]
	now, err := redis.Int64s(m.Do(ctx, "TIME"))
	require.NoError(t, err)
	_, err = m.Do(ctx, "SET", redlock.MarkerKey, now[0]*1000-60_000) // data a minute old
	require.NoError(t, err)
	require.Eventually(t, func() bool { // a master up for less than the delay does not vote
		info, err := redis.String(m.Do(ctx, "INFO", "server"))
		return err == nil && infoField(t, info, "uptime_in_seconds") >= 2
	}, 5*time.Second, 50*time.Millisecond)
	c = newClient(t, []string{m.Addr()}, redlock.WithRestartDelay(time.Second), redlock.WithRetryCount(3), redlock.WithRetryDelay(time.Millisecond))
	lk, err = c.Lock(ctx, "k", time.Second) // connects and loads the scripts
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(ctx))
	_, err = m.Do(ctx, "SCRIPT", "FLUSH")
	require.NoError(t, err)
	lk, err = c.Lock(ctx, "k", time.Second)
	require.NoError(t, err, "the retry after NOSCRIPT did not win")
	require.NoError(t, lk.Unlock(ctx))
	noKeys(t, 1)
}

// TestExtendMinority: when only a minority still holds the lock, Extend
// fails with ErrNotHeld and deletes nothing.
func TestExtendMinority(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	var addrs []string
	for _, m := range masters(t, 3) {
		addrs = append(addrs, m.Addr())
	}
	c := newClient(t, addrs)
	lk, err := c.Lock(ctx, "k", 5*time.Second)
	require.NoError(t, err)
	// Lock returns at the quorum: let the third SET land before the keys
	// are taken away, or it could land after and restore a quorum.
	require.Eventually(t, func() bool { return len(keys(t, 3)) == 3 }, time.Second, 5*time.Millisecond)
	for _, m := range masters(t, 3)[:2] {
		_, err := m.Do(ctx, "DEL", "k")
		require.NoError(t, err)
	}
	_, err = lk.Extend(ctx, 10*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	v, err := redis.String(masters(t, 3)[2].Do(ctx, "GET", "k"))
	require.NoError(t, err, "a failed Extend deleted the key")
	assert.Equal(t, lk.Value(), v)
	pttl, err := redis.Int64(masters(t, 3)[2].Do(ctx, "PTTL", "k"))
	require.NoError(t, err)
	assert.LessOrEqual(t, pttl, int64(10000), "the minority key may be renewed, never beyond the new ttl")

	// Unlock succeeds only on a quorum: one delete out of three is not one.
	err = lk.Unlock(ctx)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	assert.NotErrorIs(t, err, lock.ErrNoQuorum)
	noKeys(t, 3, "Unlock deleted the minority's key all the same")
}

// TestFromEnv drives the factory from LOCK_CONFIG as the original does.
func TestFromEnv(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	var conns []string
	for _, m := range masters(t, 3) {
		host, port, _ := strings.Cut(m.Addr(), ":")
		conns = append(conns, fmt.Sprintf(`{"host":%q,"port":%s}`, host, port))
	}
	t.Setenv(lock.EnvVar, fmt.Sprintf(`{"namespace":"env","lockConfig":{"type":"redis","connections":[%s],"lockOptions":{"retryCount":0,"nodeTimeout":250}}}`, strings.Join(conns, ",")))
	l, err := lock.FromEnv("")
	require.NoError(t, err)
	defer l.Destroy()
	lk, err := l.LockNs(ctx, "job", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "env:job", lk.Key())
	assert.Eventually(t, func() bool { return len(keys(t, 3)) == 3 }, time.Second, 5*time.Millisecond, "the key is on every master")
	_, err = l.LockNs(ctx, "job", time.Second)
	assert.ErrorIs(t, err, lock.ErrNotAcquired)
	require.NoError(t, lk.Unlock(ctx))
	noKeys(t, 3)

	// A single "connection" and a url work too.
	t.Setenv(lock.EnvVar, fmt.Sprintf(`{"type":"redis","connection":{"url":"redis://%s/0"}}`, masters(t, 1)[0].Addr()))
	l2, err := lock.FromEnv("x")
	require.NoError(t, err)
	defer l2.Destroy()
	lk, err = l2.LockNs(ctx, "job", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "x:job", lk.Key(), "the caller's namespace wins")
	require.NoError(t, lk.Unlock(ctx))
}

// TestSlowQuorumRefused: a master that answers only after the validity
// window has closed (CLIENT PAUSE holds the SET) makes the attempt fail with
// ErrNoValidity, and the attempt is released before Lock returns. The key
// would live 5 s (a drift factor of 0.95 leaves a validity of 248 ms), so
// only the release can explain its absence.
func TestSlowQuorumRefused(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	m := masters(t, 1)[0]
	c := newClient(t, []string{m.Addr()}, redlock.WithRetryCount(0), redlock.WithNodeTimeout(2*time.Second), redlock.WithDriftFactor(0.95))
	// The window is 248 ms; the pause holds the SET well past it, even if
	// the Lock starts late on a loaded machine.
	_, err := m.Do(ctx, "CLIENT", "PAUSE", 800, "WRITE")
	require.NoError(t, err)
	start := time.Now()
	_, err = c.Lock(ctx, "k", 5*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrNoValidity)
	assert.GreaterOrEqual(t, time.Since(start), 248*time.Millisecond, "the pause did not hold the SET")
	assert.Empty(t, keys(t, 1), "the late SET was not released")
}

// TestDestroyWhileBusy races Destroy against callers on real masters: every
// call works or fails with ErrDestroyed, nothing panics or leaks, and the
// only keys left are of locks whose Unlock Destroy refused.
func TestDestroyWhileBusy(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	var addrs []string
	for _, m := range masters(t, 3) {
		addrs = append(addrs, m.Addr())
	}
	c, err := redlock.New(pools(addrs...), redlock.WithNodeTimeout(testNodeTimeout), redlock.WithRetryCount(-1), redlock.WithRetryDelay(time.Millisecond), redlock.WithRetryJitter(time.Millisecond))
	require.NoError(t, err)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		refused = map[string]bool{} // keys whose Unlock Destroy refused
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprint("k", (w+i)%3)
				lk, err := c.Lock(ctx, key, 10*time.Second)
				if err == nil {
					if err = lk.Unlock(ctx); err != nil {
						mu.Lock()
						refused[key] = true
						mu.Unlock()
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	require.NoError(t, c.Destroy())
	wg.Wait()
	require.NotEmpty(t, errs, "Destroy came after all the work")
	for _, err := range errs {
		assert.ErrorIs(t, err, lockerr.ErrDestroyed)
	}
	for _, k := range keys(t, 3) {
		_, key, _ := strings.Cut(k, ":")
		assert.True(t, refused[key], "key %s left behind by a call that did not report ErrDestroyed on Unlock", k)
	}
}

// TestHungMaster: a frozen master (docker pause) costs at most one node
// timeout per call and never stalls one; with a majority frozen, Lock fails
// as unreachable within its attempts' node timeouts.
func TestHungMaster(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	ms := masters(t, 3)
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.Addr())
	}
	const timeout = 200 * time.Millisecond
	c := newClient(t, addrs, redlock.WithNodeTimeout(timeout), redlock.WithRetryCount(0))
	require.NoError(t, ms[2].Pause(ctx))
	paused := []*integration.Master{ms[2]}
	t.Cleanup(func() {
		for _, m := range paused {
			_ = m.Unpause(context.Background())
		}
	})

	for i := range 5 {
		start := time.Now()
		lk, err := c.Lock(ctx, fmt.Sprint("k", i), 2*time.Second)
		require.NoError(t, err, "one of three masters hung")
		require.NoError(t, lk.Unlock(ctx))
		// Not a speed claim: a stall would take far longer than this.
		assert.Less(t, time.Since(start), 2*timeout+time.Second, "cycle %d stalled on the hung master", i)
	}

	held, err := c.Lock(ctx, "held", 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, ms[1].Pause(ctx))
	paused = append(paused, ms[1])
	start := time.Now()
	// A deadline of its own, so that a stall fails here, not at the test
	// binary's timeout.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = c.Lock(lctx, "k", 2*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrUnreachable)
	assert.NotErrorIs(t, err, lock.ErrTaken)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "a node timeout is not the caller's deadline")
	assert.Contains(t, err.Error(), "no answer within 200ms")
	assert.Less(t, time.Since(start), 2*timeout+time.Second, "Lock stalled on two hung masters")

	// Unlock and Extend cannot learn the outcome from a quorum: ErrNoQuorum,
	// not ErrNotHeld.
	_, err = held.Extend(lctx, 5*time.Second)
	require.ErrorIs(t, err, lock.ErrNoQuorum)
	assert.NotErrorIs(t, err, lockerr.ErrNotHeld)
	err = held.Unlock(lctx)
	require.ErrorIs(t, err, lock.ErrNoQuorum)
	assert.NotErrorIs(t, err, lockerr.ErrNotHeld)
	left, err := redis.Strings(ms[0].Do(ctx, "KEYS", "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "the live master holds nothing after the refused Lock and the Unlock")
}

// TestStuckDialDoesNotHoldDestroy: a pool that dials with Dial (which
// takes no context) and sends a command on connecting, with no read
// timeout, never finishes a dial to a hung master. Lock and a waiter (whose
// subscriptions dial each master too) get on with the other two, the hung
// master is not dialed again while that dial hangs (one for the requests,
// one for the subscriptions), and Destroy returns without waiting for it.
func TestStuckDialDoesNotHoldDestroy(t *testing.T) {
	flush(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ms := masters(t, 3)
	require.NoError(t, ms[2].Pause(ctx))
	t.Cleanup(func() { _ = ms[2].Unpause(context.Background()) })
	var hungDials atomic.Int64
	ps := make([]*redis.Pool, 3)
	for i, m := range ms {
		ps[i] = &redis.Pool{Dial: func() (redis.Conn, error) {
			if i == 2 {
				hungDials.Add(1)
			}
			return redis.Dial("tcp", m.Addr(), redis.DialClientName("stuck-dial-test"))
		}}
	}
	const timeout = testNodeTimeout
	c, err := redlock.New(ps, redlock.WithNodeTimeout(timeout), redlock.WithRetryCount(-1),
		redlock.WithRetryDelay(20*time.Millisecond), redlock.WithRetryJitter(0))
	require.NoError(t, err)
	held, err := c.Lock(ctx, "k", 5*time.Second)
	require.NoError(t, err, "two of three masters answer")
	waited := make(chan error, 1)
	go func() {
		lk, err := c.Lock(ctx, "k", 5*time.Second)
		if err == nil {
			err = lk.Unlock(ctx)
		}
		waited <- err
	}()
	time.Sleep(300 * time.Millisecond) // the waiter subscribes, on every master
	require.NoError(t, held.Unlock(ctx))
	require.NoError(t, <-waited)
	for i := range 6 { // each attempt finds no connection to the hung master
		lk, err := c.Lock(ctx, fmt.Sprint("k", i), 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, lk.Unlock(ctx))
		time.Sleep(timeout)
	}
	assert.LessOrEqual(t, hungDials.Load(), int64(2), "the hung master was dialed again while a dial to it hung")
	destroyed := make(chan error, 1)
	go func() { destroyed <- c.Destroy() }()
	select {
	case <-destroyed:
	case <-time.After(5 * time.Second):
		t.Fatal("Destroy still waits, 5s on, for a dial to the hung master")
	}
}

// TestSlowExtendRefused: an Extend whose quorum answers after its new window
// has closed fails (ErrNoQuorum, Cause ErrNoValidity) and deletes nothing.
func TestSlowExtendRefused(t *testing.T) {
	flush(t, 1)
	ctx := t.Context()
	m := masters(t, 1)[0]
	c := newClient(t, []string{m.Addr()}, redlock.WithNodeTimeout(2*time.Second))
	lk, err := c.Lock(ctx, "k", 5*time.Second)
	require.NoError(t, err)
	// The new window is 295 ms; the pause holds the answer well past it,
	// even if the Extend starts late on a loaded machine.
	_, err = m.Do(ctx, "CLIENT", "PAUSE", 800, "WRITE")
	require.NoError(t, err)
	_, err = lk.Extend(ctx, 300*time.Millisecond)
	require.ErrorIs(t, err, lock.ErrNoQuorum)
	assert.ErrorIs(t, err, lock.ErrNoValidity)
	v, err := redis.String(m.Do(ctx, "GET", "k"))
	require.NoError(t, err)
	assert.Equal(t, lk.Value(), v, "a failed Extend deleted the key")
	require.NoError(t, lk.Unlock(ctx))
}

// TestExpirationWindow: Expiration is start + ttl - drift of the attempt
// that won, never the first attempt's and never without the drift.
func TestExpirationWindow(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	var addrs []string
	for _, m := range masters(t, 3) {
		addrs = append(addrs, m.Addr())
	}
	ttl := 2 * time.Second
	drift := 22 * time.Millisecond // round(0.01 * 2000) + 2
	c := newClient(t, addrs, redlock.WithRetryCount(-1), redlock.WithRetryDelay(20*time.Millisecond), redlock.WithRetryJitter(0))

	before := time.Now()
	lk, err := c.Lock(ctx, "k", ttl)
	require.NoError(t, err)
	after := time.Now()
	assert.False(t, lk.Expiration().After(after.Add(ttl-drift)), "no drift taken off: %v", lk.Expiration().Sub(before))
	assert.False(t, lk.Expiration().Before(before.Add(ttl-drift)))
	require.NoError(t, lk.Unlock(ctx))

	// Held elsewhere for a second: the lock is won by a later attempt, and
	// its window starts then (measured from the first attempt, it would be
	// a second short; the winning attempt itself may take up to 300 ms).
	for _, m := range masters(t, 3) {
		_, err := m.Do(ctx, "SET", "k", "other", "PX", 1000)
		require.NoError(t, err)
	}
	lk, err = c.Lock(ctx, "k", ttl)
	require.NoError(t, err)
	won := time.Now()
	assert.True(t, lk.Expiration().After(won.Add(ttl-drift-300*time.Millisecond)),
		"validity measured from an earlier attempt: %v left of %v", time.Until(lk.Expiration()), ttl-drift)
	require.NoError(t, lk.Unlock(ctx))
}

// TestCancelMidAttempt: a caller cancelled while an attempt waits on a slow
// master still leaves nothing behind on the masters that said yes.
func TestCancelMidAttempt(t *testing.T) {
	flush(t, 3)
	ms := masters(t, 3)
	for _, m := range ms[1:] {
		_, err := m.Do(t.Context(), "SET", "k", "other", "PX", 5000)
		require.NoError(t, err)
	}
	c := newClient(t, []string{ms[0].Addr(), ms[1].Addr(), ms[2].Addr()}, redlock.WithRetryCount(0), redlock.WithNodeTimeout(2*time.Second))
	// Master 2 holds its answer for 300ms, so the outcome waits on it.
	_, err := ms[2].Do(t.Context(), "CLIENT", "PAUSE", 300, "WRITE")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.Lock(ctx, "k", 5*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	n, err := redis.Int(ms[0].Do(t.Context(), "EXISTS", "k"))
	require.NoError(t, err)
	assert.Zero(t, n, "master 0 kept the cancelled caller's key")
}

// TestRestartHazard: a lock held on exactly a quorum, one of whose masters
// restarts empty. Without the restart protection a second client is granted
// the same key while the first still holds it (the negative control); with
// it, the restarted master does not vote, the second client is refused, and
// the master votes again once the delay has passed.
func TestRestartHazard(t *testing.T) {
	ms := masters(t, 3)
	proxy := shared.Cluster(t).Proxies(t)[2]
	addrs := []string{ms[0].Addr(), ms[1].Addr(), proxy.Addr()}
	// The first holder's validity must outlast a container restart on a
	// busy machine; the delay must outlast that validity, so that the last
	// Lock finds master 0 free again.
	const ttl, delay = 6 * time.Second, 7 * time.Second
	for _, protect := range []bool{false, true} {
		t.Run(fmt.Sprintf("protection=%v", protect), func(t *testing.T) {
			ctx := t.Context()
			flush(t, 3)
			opts := []redlock.Option{redlock.WithRetryCount(0), redlock.WithNodeTimeout(testNodeTimeout)}
			if protect {
				opts = append(opts, redlock.WithRestartDelay(delay))
				seedMarkers(t, 3)
				waitUptime(t, 3, delay)
			}
			first := newClient(t, addrs, opts...)
			second := newClient(t, addrs, opts...)

			// Master 2 is cut off while the first client locks: the lock is
			// on masters 0 and 1 only, exactly a quorum. Master 2 keeps its
			// data and its uptime.
			require.NoError(t, proxy.Blackhole())
			held, err := first.Lock(ctx, "k", ttl)
			// Lock returns at the quorum; master 2's SET is still in flight
			// and must run out its node timeout before the link heals, or
			// it could still reach master 2.
			time.Sleep(testNodeTimeout + 100*time.Millisecond)
			require.NoError(t, proxy.Heal())
			require.NoError(t, err)
			// Master 1 restarts without persistence: the key is gone there.
			restart := time.Now()
			require.NoError(t, ms[1].Restart(ctx))
			t.Logf("master 1 restarted in %v", time.Since(restart).Round(time.Millisecond))

			stolen, err := second.Lock(ctx, "k", ttl)
			if !protect {
				require.NoError(t, err, "negative control: the hazard must show without protection")
				assert.True(t, time.Now().Before(held.Expiration()) && time.Now().Before(stolen.Expiration()),
					"two valid holders of one key")
				return
			}
			require.ErrorIs(t, err, lockerr.ErrNotAcquired, "the restarted master voted")
			var le *lock.Error
			require.ErrorAs(t, err, &le)
			byNode := map[int]error{}
			for _, ne := range le.Nodes {
				byNode[ne.Node] = ne.Err
			}
			assert.ErrorIs(t, byNode[0], lock.ErrTaken, "master 0: %v", err)
			assert.ErrorIs(t, byNode[1], lock.ErrRejoining, "master 1, the restarted one: %v", err)
			assert.NotContains(t, byNode, 2, "master 2 kept its data and voted yes: %v", err)
			assert.True(t, time.Now().Before(held.Expiration()), "the first holder's lock is still valid, and still alone")

			// Once the delay has passed, master 1 votes again.
			time.Sleep(delay)
			lk, err := second.Lock(ctx, "k", ttl)
			require.NoError(t, err, "master 1 still refused after the restart delay")
			require.NoError(t, lk.Unlock(ctx))
		})
	}
}

// waitUptime waits until the first n masters have been up for d, so that
// the restart protection lets them vote.
func waitUptime(t *testing.T, n int, d time.Duration) {
	t.Helper()
	for _, m := range masters(t, n) {
		info, err := redis.String(m.Do(t.Context(), "INFO", "server"))
		require.NoError(t, err)
		_, rest, _ := strings.Cut(info, "uptime_in_seconds:")
		secs, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
		require.NoError(t, err)
		if up := time.Duration(secs) * time.Second; up < d {
			time.Sleep(d - up + time.Second)
		}
	}
}

// TestRestartDelayBoundsTTL: with the protection on, a ttl longer than the
// restart delay is refused, since the delay could not cover it.
func TestRestartDelayBoundsTTL(t *testing.T) {
	c := newClient(t, []string{deadAddr(t)}, redlock.WithRestartDelay(time.Second))
	_, err := c.Lock(t.Context(), "k", 2*time.Second)
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "restart delay")
}

func TestMarkerKeyReserved(t *testing.T) {
	c := newClient(t, []string{deadAddr(t)})
	_, err := c.Lock(t.Context(), redlock.MarkerKey, time.Second)
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "reserved")
}

// TestLockAllPartial: on a master where one key of the set is another
// owner's, the set's script sets none of them; with that on a quorum the
// set is refused and leaves nothing. Extend of a set fails as a whole when
// one of its keys was taken over on a quorum, and renews none of them.
func TestLockAllPartial(t *testing.T) {
	flush(t, 3)
	ctx := t.Context()
	ms := masters(t, 3)
	c := newClient(t, addrsOf(t, 3), redlock.WithRetryCount(0))
	for _, m := range ms[:2] {
		_, err := m.Do(ctx, "SET", "b", "another-owner", "PX", 5000)
		require.NoError(t, err)
	}
	_, err := c.LockAll(ctx, []string{"a", "b"}, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, lock.ErrTaken)
	for i, m := range ms {
		n, err := redis.Int(m.Do(ctx, "EXISTS", "a"))
		require.NoError(t, err)
		assert.Zero(t, n, "master %d holds a", i)
	}
	flush(t, 3)
	lk, err := c.LockAll(ctx, []string{"a", "b"}, 2*time.Second)
	require.NoError(t, err)
	for _, m := range ms[:2] { // b taken over on a quorum
		_, err := m.Do(ctx, "SET", "b", "another-owner", "PX", 5000)
		require.NoError(t, err)
	}
	_, err = lk.Extend(ctx, 10*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	for i, m := range ms[:2] {
		pttl, err := redis.Int(m.Do(ctx, "PTTL", "a"))
		require.NoError(t, err)
		assert.LessOrEqual(t, pttl, 2000, "master %d renewed a though b was not ours", i)
	}
	require.ErrorIs(t, lk.Unlock(ctx), lockerr.ErrNotHeld)
	for i, m := range ms {
		v, err := redis.String(m.Do(ctx, "GET", "b"))
		if i < 2 {
			require.NoError(t, err)
			assert.Equal(t, "another-owner", v, "master %d: the other owner's b was touched", i)
		}
		n, err := redis.Int(m.Do(ctx, "EXISTS", "a"))
		require.NoError(t, err)
		assert.Zero(t, n, "master %d: Unlock left a", i)
	}
}
