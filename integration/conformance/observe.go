package conformance

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

// tally counts events by kind and outcome, and checks their fields.
type tally struct {
	mu sync.Mutex
	n  map[string]int
	t  *testing.T
}

func (c *tally) Observe(e observe.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := e.Kind.String()
	if e.Err != nil {
		k += " failed"
	}
	c.n[k]++
	switch e.Kind {
	case observe.KindLock:
		assert.Positive(c.t, e.Attempts, "attempts")
	case observe.KindUnlock:
		if e.Err == nil {
			assert.Positive(c.t, e.Held, "hold time")
		}
	case observe.KindNode:
		assert.NotEmpty(c.t, e.Addr)
		assert.NotEmpty(c.t, e.Op)
		if e.Err != nil && !errors.Is(e.Err, lockerr.ErrTaken) && !errors.Is(e.Err, lockerr.ErrNotHeldHere) {
			c.n["node trouble"]++
		}
	}
}

// testObserver: the events match a known workload.
func testObserver(t *testing.T, b Backend) {
	ctx := t.Context()
	obs := &tally{n: map[string]int{}, t: t}
	l := newLocker(t, b, Opts{Observer: obs})
	for range 3 {
		lk, err := l.Lock(ctx, "o", time.Second)
		require.NoError(t, err)
		lk, err = lk.Extend(ctx, time.Second)
		require.NoError(t, err)
		require.NoError(t, lk.Unlock(ctx))
	}
	held, err := l.Lock(ctx, "busy", time.Second)
	require.NoError(t, err)
	_, err = l.Lock(ctx, "busy", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	require.NoError(t, held.Unlock(ctx))

	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, 4, obs.n["lock"])
	assert.Equal(t, 1, obs.n["lock failed"])
	assert.Equal(t, 4, obs.n["attempt"])
	assert.Equal(t, 1, obs.n["attempt failed"])
	assert.Equal(t, 3, obs.n["extend"])
	assert.Equal(t, 4, obs.n["unlock"])
	assert.Zero(t, obs.n["node trouble"], "healthy masters reported as failing")
	if b.Keys != nil { // masters: every request got at least a quorum of answers
		quorum := b.Masters/2 + 1
		assert.GreaterOrEqual(t, obs.n["node"], (4+3+4)*quorum, "answers: yes")
		assert.GreaterOrEqual(t, obs.n["node failed"], quorum, "answers: taken")
	}
}
