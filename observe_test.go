package lock_test

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
)

// counter counts events by kind and outcome.
type counter struct {
	mu   sync.Mutex
	n    map[string]int
	held time.Duration
}

func (c *counter) Observe(e lock.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	k := e.Kind.String()
	if e.Err != nil {
		k += " failed"
	}
	c.n[k]++
	if e.Kind == lock.KindUnlock {
		c.held += e.Held
	}
}

// TestObserverCounts: the events match a known workload: 5 cycles of Lock,
// Extend and Unlock, and 2 Locks refused while a key is held.
func TestObserverCounts(t *testing.T) {
	obs := &counter{}
	l, err := lock.Create(lock.Options{Observer: obs})
	require.NoError(t, err)
	defer l.Destroy()
	ctx := t.Context()
	for range 5 {
		lk, err := l.Lock(ctx, "k", time.Second)
		require.NoError(t, err)
		lk, err = lk.Extend(ctx, time.Second)
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
		require.NoError(t, lk.Unlock(ctx))
	}
	held, err := l.Lock(ctx, "busy", time.Second)
	require.NoError(t, err)
	for range 2 {
		_, err := l.Lock(ctx, "busy", time.Second)
		require.ErrorIs(t, err, lock.ErrNotAcquired)
	}
	require.NoError(t, held.Unlock(ctx))
	assert.Equal(t, map[string]int{
		"lock": 6, "lock failed": 2, "attempt": 6, "attempt failed": 2,
		"extend": 5, "unlock": 6,
	}, obs.n)
	assert.GreaterOrEqual(t, obs.held, 10*time.Millisecond, "hold times")
}

// TestSlogObserver: trouble is logged at Warn, the rest at Debug.
func TestSlogObserver(t *testing.T) {
	var buf bytes.Buffer
	obs := lock.SlogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	obs.Observe(lock.Event{Kind: lock.KindLock, Key: "ok", Attempts: 1})
	obs.Observe(lock.Event{Kind: lock.KindLock, Key: "k", Err: lock.ErrNotAcquired, Attempts: 3})
	obs.Observe(lock.Event{Kind: lock.KindNode, Node: 1, Addr: "10.0.0.2:6379", Op: "acquire",
		Err: errors.Join(lock.ErrUnreachable, errors.New("no answer within 50ms"))})
	out := buf.String()
	assert.NotContains(t, out, "key=ok", "a success logged at Info")
	assert.Contains(t, out, `level=WARN msg="lock lock" kind=lock`)
	assert.Contains(t, out, "attempts=3")
	assert.Contains(t, out, `addr=10.0.0.2:6379 op=acquire`)
}
