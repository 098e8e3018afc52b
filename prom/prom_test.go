package prom_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/prom"
)

// TestCountsMatchWorkload: 4 cycles of Lock, Extend, Unlock and 3 Locks
// refused on a held key, through a real (in-memory) Locker, give exactly
// those counts.
func TestCountsMatchWorkload(t *testing.T) {
	c := prom.New()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	l, err := lock.Create(lock.Options{Observer: c})
	require.NoError(t, err)
	defer l.Destroy()
	ctx := t.Context()
	for range 4 {
		lk, err := l.Lock(ctx, "k", time.Second)
		require.NoError(t, err)
		lk, err = lk.Extend(ctx, time.Second)
		require.NoError(t, err)
		require.NoError(t, lk.Unlock(ctx))
	}
	held, err := l.Lock(ctx, "busy", time.Second)
	require.NoError(t, err)
	for range 3 {
		_, err := l.Lock(ctx, "busy", time.Second)
		require.ErrorIs(t, err, lock.ErrNotAcquired)
	}
	require.NoError(t, held.Unlock(ctx))
	require.ErrorIs(t, held.Unlock(ctx), lock.ErrNotHeld)

	expected := `
# HELP lock_acquisitions_total Lock calls, by result.
# TYPE lock_acquisitions_total counter
lock_acquisitions_total{result="acquired"} 5
lock_acquisitions_total{result="not_acquired"} 3
# HELP lock_attempts_total Attempts made by Lock calls, by result.
# TYPE lock_attempts_total counter
lock_attempts_total{result="acquired"} 5
lock_attempts_total{result="failed"} 3
# HELP lock_extends_total Extend calls, by result.
# TYPE lock_extends_total counter
lock_extends_total{result="ok"} 4
# HELP lock_unlocks_total Unlock calls, by result.
# TYPE lock_unlocks_total counter
lock_unlocks_total{result="not_held"} 1
lock_unlocks_total{result="ok"} 5
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"lock_acquisitions_total", "lock_attempts_total", "lock_extends_total", "lock_unlocks_total"))
	// The histograms saw every Lock's wait and every Unlock's hold time.
	assert.Equal(t, uint64(8), histCount(t, reg, "lock_wait_seconds"))
	assert.Equal(t, uint64(5), histCount(t, reg, "lock_hold_seconds"))
	// Lint: names and help follow the conventions.
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestMasterMetrics: per-master answers and restarts, from the events a
// Redis Locker sends (made here by hand: the Redis path itself is tested in
// the library).
func TestMasterMetrics(t *testing.T) {
	c := prom.New()
	node := func(op string, err error) {
		c.Observe(lock.Event{Kind: lock.KindNode, Node: 1, Addr: "10.0.0.2:6379", Op: op, Took: time.Millisecond, Err: err})
	}
	node("acquire", nil)
	node("acquire", lock.ErrTaken)
	node("acquire", errors.Join(lock.ErrRejoining, errors.New("restarted")))
	node("release", errors.Join(lock.ErrUnreachable, errors.New("no answer within 50ms")))
	node("extend", lock.ErrNotHeldHere)
	node("acquire", fmt.Errorf("%w: WRONGPASS", lock.ErrAuth))
	node("acquire", fmt.Errorf("%w: x509", lock.ErrTLS))
	node("acquire", fmt.Errorf("%w: READONLY", lock.ErrReadOnly))
	node("extend", fmt.Errorf("%w: 0 of 1", lock.ErrNotReplicated))
	node("acquire", fmt.Errorf("%w: volatile-lru", lock.ErrEvictable))
	node("acquire", errors.New("OOM command not allowed"))
	c.Observe(lock.Event{Kind: lock.KindMaster, Node: 1, Addr: "10.0.0.2:6379", Err: fmt.Errorf("%w: volatile-lru", lock.ErrEvictable)})
	c.Observe(lock.Event{Kind: lock.KindMaster, Node: 1, Addr: "10.0.0.2:6379", Err: fmt.Errorf("%w: masters 0 and 1", lock.ErrSameServer)})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	expected := `
# HELP lock_master_answers_total Masters' answers to requests, by answer.
# TYPE lock_master_answers_total counter
lock_master_answers_total{answer="auth",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="error",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="evictable",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="not_held",master="10.0.0.2:6379",op="extend"} 1
lock_master_answers_total{answer="not_replicated",master="10.0.0.2:6379",op="extend"} 1
lock_master_answers_total{answer="read_only",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="rejoining",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="taken",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="tls",master="10.0.0.2:6379",op="acquire"} 1
lock_master_answers_total{answer="unreachable",master="10.0.0.2:6379",op="release"} 1
lock_master_answers_total{answer="yes",master="10.0.0.2:6379",op="acquire"} 1
# HELP lock_master_rejoining_answers_total Answers from a master that restarted or lost its data less than the restart delay ago, by request.
# TYPE lock_master_rejoining_answers_total counter
lock_master_rejoining_answers_total{master="10.0.0.2:6379"} 1
# HELP lock_master_trouble_total Trouble a master told of when a connection to it opened, by kind.
# TYPE lock_master_trouble_total counter
lock_master_trouble_total{master="10.0.0.2:6379",trouble="evictable"} 1
lock_master_trouble_total{master="10.0.0.2:6379",trouble="same_server"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"lock_master_answers_total", "lock_master_rejoining_answers_total", "lock_master_trouble_total"))
}

// histCount is how many observations the histogram name holds.
func histCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
