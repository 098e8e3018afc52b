package faults

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/redlock"
)

// evicting starts a master that evicts keys with a ttl when its 3 MB are
// full: ElastiCache's default policy, volatile-lru.
func evicting(t *testing.T) *redistest.Server {
	return redistest.StartServer(t, redistest.WithMaxMemory("3mb", "volatile-lru"))
}

// lruTick is how long a lock key must sit untouched before filling memory,
// for volatile-lru to pick it: Redis's LRU clock ticks once a second, and
// keys of the same tick are evicted at random.
const lruTick = 1500 * time.Millisecond

// fill writes 1 KB keys with a ttl to s, 100 per round trip, until key is
// gone, or (under noeviction) until a write is refused; 20,000 at most. It
// returns how many it wrote, the server's evicted_keys, and the refusal.
func fill(t *testing.T, s *redistest.Server, key string) (written int, evicted int64, refused error) {
	t.Helper()
	conn, err := s.Dial(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	value := strings.Repeat("x", 1024)
	for written < 20_000 {
		for i := range 100 {
			require.NoError(t, conn.Send("SET", fmt.Sprintf("filler:%d", written+i), value, "PX", 600_000))
		}
		require.NoError(t, conn.Flush())
		for range 100 {
			_, err := conn.Receive()
			var reply redis.Error
			if errors.As(err, &reply) {
				refused = err
			} else {
				require.NoError(t, err)
			}
		}
		written += 100
		n, err := redis.Int(redis.DoContext(conn, t.Context(), "EXISTS", key))
		require.NoError(t, err)
		if n == 0 || refused != nil {
			break
		}
	}
	info, err := s.Info(t.Context(), "stats")
	require.NoError(t, err)
	evicted, err = strconv.ParseInt(info["evicted_keys"], 10, 64)
	require.NoError(t, err)
	return written, evicted, refused
}

// evictableWarnings returns, per master, the KindMaster events matching
// ErrEvictable.
func evictableWarnings(seen *answers) map[int][]error {
	out := map[int][]error{}
	for _, e := range seen.masterEvents() {
		if errors.Is(e.Err, lock.ErrEvictable) {
			out[e.Node] = append(out[e.Node], e.Err)
		}
	}
	return out
}

// TestEvictionDoubleGrant (the control): two of three masters evict keys
// with a ttl (volatile-lru) when memory is full, and every lock key has a
// ttl. A held lock's key, once older than an LRU tick, is evicted by
// filler keys on both, and a second client gets a quorum while the first
// client's lock is valid. The Client warned of both masters, through its
// observer, as soon as it connected.
func TestEvictionDoubleGrant(t *testing.T) {
	t.Parallel()
	e1, e2, n := evicting(t), evicting(t), redistest.StartServer(t)
	addrs := []string{e1.Addr(), e2.Addr(), n.Addr()}
	var seen answers
	c1 := newClient(t, addrs, redlock.WithRetryCount(0), redlock.WithObserver(&seen))
	lk1, err := c1.Lock(t.Context(), "k", 8*time.Second)
	require.NoError(t, err)
	held1 := safety.Mono()
	time.Sleep(lruTick)
	start := time.Now()
	var figures []string
	for _, s := range []*redistest.Server{e1, e2} {
		written, evicted, refused := fill(t, s, "k")
		require.NoError(t, refused)
		require.Positive(t, evicted, "%s evicted nothing", s.Addr())
		require.Empty(t, get(t, s, "k"), "%s kept the lock key after %d fillers", s.Addr(), written)
		figures = append(figures, fmt.Sprintf("%d fillers, evicted_keys %d", written, evicted))
	}
	filled := time.Since(start)
	require.Equal(t, lk1.Value(), get(t, n, "k"))

	c2 := newClient(t, addrs, redlock.WithRetryCount(0))
	lk2, err := c2.Lock(t.Context(), "k", 8*time.Second)
	require.NoError(t, err, "the control: the second client should have got a quorum of the masters that evicted the key")
	held2 := safety.Mono()
	left := time.Until(lk1.Expiration())
	var rec safety.Recorder
	rec.Held("k", "client 1", held1, safety.MonoAt(lk1.Expiration()), lk1.Expiration())
	rec.Held("k", "client 2", held2, safety.MonoAt(lk2.Expiration()), lk2.Expiration())
	violations := safety.Check(rec.Windows())
	require.Len(t, violations, 1)

	warned := evictableWarnings(&seen)
	require.Len(t, warned, 2, "warnings: %v", warned)
	for _, node := range []int{0, 1} {
		require.Len(t, warned[node], 1, "master %d", node)
		assert.Contains(t, warned[node][0].Error(), "maxmemory-policy volatile-lru")
	}
	report(t, "eviction control: 2 of 3 masters volatile-lru, 3mb: lock key evicted after %s (%v); client 2 granted k with client 1's validity %v from its end (%v); the Client warned: %q",
		strings.Join(figures, " and "), filled.Round(time.Millisecond), left.Round(time.Millisecond), violations[0], warned[0][0])
}

// lockedWriter is a bytes.Buffer for a logger written from many
// goroutines.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestEvictionRefused: lock.SlogObserver logs a master that can evict lock
// keys at Warn; and with WithRequireNoEviction(true) the votes of such
// masters do not count: each answers ErrEvictable, naming its policy. With
// two of three such masters a Lock fails; with one it is granted by the
// other two, and that master evicting the key later gives a second client
// nothing.
func TestEvictionRefused(t *testing.T) {
	t.Parallel()
	e1, e2, n1, n2 := evicting(t), evicting(t), redistest.StartServer(t), redistest.StartServer(t)

	var log lockedWriter
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	warned := newClient(t, []string{e1.Addr(), n1.Addr(), n2.Addr()}, redlock.WithObserver(lock.SlogObserver(logger)))
	lk, err := warned.Lock(t.Context(), "logged", time.Second)
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(t.Context()))
	var line string
	for l := range strings.Lines(log.String()) {
		if strings.Contains(l, "kind=master") {
			line = strings.TrimSpace(l)
		}
	}
	require.NotEmpty(t, line, "nothing logged of the evicting master: %s", log.String())
	assert.Contains(t, line, "level=WARN")
	assert.Contains(t, line, "maxmemory-policy volatile-lru")
	assert.Contains(t, line, "addr="+e1.Addr())

	strict := []redlock.Option{redlock.WithRequireNoEviction(true), redlock.WithRetryCount(0)}
	two := newClient(t, []string{e1.Addr(), e2.Addr(), n1.Addr()}, strict...)
	_, err = two.Lock(t.Context(), "k", 8*time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired, "two of three masters can evict")
	for _, node := range []int{0, 1} {
		require.ErrorIs(t, nodeErr(err, node), lock.ErrEvictable, "master %d", node)
		assert.Contains(t, nodeErr(err, node).Error(), "maxmemory-policy volatile-lru")
	}
	require.NoError(t, nodeErr(err, 2))
	refused := err

	var seen answers
	one := newClient(t, []string{e1.Addr(), n1.Addr(), n2.Addr()}, append(strict, redlock.WithObserver(&seen))...)
	lk1, err := one.Lock(t.Context(), "k", 8*time.Second)
	require.NoError(t, err, "one of three masters can evict")
	require.NotEmpty(t, evictableWarnings(&seen)[0])
	time.Sleep(lruTick)
	written, evicted, fillErr := fill(t, e1, "k")
	require.NoError(t, fillErr)
	require.Positive(t, evicted)
	require.Empty(t, get(t, e1, "k"))
	other := newClient(t, []string{e1.Addr(), n1.Addr(), n2.Addr()}, strict...)
	_, err = other.Lock(t.Context(), "k", 8*time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired, "a second client got k while the first held it")
	assert.ErrorIs(t, nodeErr(err, 0), lock.ErrEvictable)
	require.NoError(t, lk1.Unlock(t.Context()))
	report(t, "requireNoEviction: 2 of 3 masters volatile-lru: %v; 1 of 3: granted, and after its key was evicted (%d fillers, evicted_keys %d) a second client was refused; SlogObserver: %s",
		refused, written, evicted, line)
}

// TestNoEvictionNotFlagged: noeviction, and a policy without maxmemory,
// are not flagged: no warning, and their votes count with
// WithRequireNoEviction. Under noeviction a full master refuses writes
// (OOM) and keeps the held lock key.
func TestNoEvictionNotFlagged(t *testing.T) {
	t.Parallel()
	noev := redistest.StartServer(t, redistest.WithMaxMemory("3mb", "noeviction"))
	unlimited := redistest.StartServer(t, redistest.WithServerArgs("--maxmemory-policy", "volatile-lru"))
	n1, n2 := redistest.StartServer(t), redistest.StartServer(t)
	for _, s := range []*redistest.Server{noev, unlimited} {
		var seen answers
		c := newClient(t, []string{s.Addr(), n1.Addr(), n2.Addr()}, redlock.WithRequireNoEviction(true),
			redlock.WithRetryCount(0), redlock.WithObserver(&seen))
		key := "k:" + s.Addr()
		plant(t, n2, key, time.Minute) // the Lock needs s's vote
		lk, err := c.Lock(t.Context(), key, 8*time.Second)
		require.NoError(t, err, "%s's vote did not count", s.Addr())
		assert.Empty(t, seen.masterEvents(), "%s was flagged", s.Addr())
		if s == unlimited {
			require.NoError(t, lk.Unlock(t.Context()))
			continue
		}
		time.Sleep(lruTick)
		written, evicted, refused := fill(t, noev, key)
		require.Error(t, refused, "noeviction took %d fillers", written)
		assert.Contains(t, refused.Error(), "OOM")
		assert.Zero(t, evicted)
		assert.Equal(t, lk.Value(), get(t, noev, key), "noeviction lost the lock key")
		// A new lock on the full master: its SET is refused, named as the
		// server's error (neither taken nor unreachable). The filling
		// connection's buffers counted towards used_memory: with it
		// closed, memory can fall back just under the limit, so the limit
		// is lowered to keep the master full.
		_, err = noev.Do(t.Context(), "CONFIG", "SET", "maxmemory", "1mb")
		require.NoError(t, err)
		plant(t, n2, "new", time.Minute)
		_, err = c.Lock(t.Context(), "new", time.Second)
		require.ErrorIs(t, err, lock.ErrNotAcquired)
		full := nodeErr(err, 0)
		require.Error(t, full)
		assert.Contains(t, full.Error(), "OOM")
		assert.NotErrorIs(t, full, lock.ErrTaken)
		assert.NotErrorIs(t, full, lock.ErrUnreachable)
		require.NoError(t, lk.Unlock(t.Context()), "the held lock is released on the full master")
		report(t, "noeviction, 3mb: not flagged; full after %d fillers (%v), evicted_keys %d, the held lock key kept; a new Lock there: %q",
			written, refused, evicted, full)
	}
}
