package conformance

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
)

// testLockAll: a lock on a set of keys holds all of them or none.
func testLockAll(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})

	all, err := l.LockAll(ctx, []string{"a", "b", "c"}, time.Second)
	require.NoError(t, err)
	assert.Equal(t, "a", all.Key())
	assert.Equal(t, []string{"a", "b", "c"}, all.Keys())
	for _, k := range []string{"a", "b", "c"} {
		_, err := l.Lock(ctx, k, time.Second)
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "%q is free while the set holds it", k)
	}
	_, err = l.LockAll(ctx, []string{"c", "d"}, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "overlapping set")
	d, err := l.Lock(ctx, "d", time.Second)
	require.NoError(t, err, "the refused set left d behind")
	require.NoError(t, d.Unlock(ctx))

	// Extend renews every key; the old handle still unlocks them all.
	ext, err := all.Extend(ctx, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, all.Keys(), ext.Keys())
	time.Sleep(time.Until(all.Expiration()) + 50*time.Millisecond)
	_, err = l.Lock(ctx, "b", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "b expired with the old ttl")
	require.NoError(t, all.Unlock(ctx))
	assertNoKeys(t, b)

	// A member of a held set cannot be locked alone; a set of one key is
	// a plain lock.
	all, err = l.LockAll(ctx, []string{"x", "y"}, time.Second)
	require.NoError(t, err)
	y, err := l.Lock(ctx, "y", time.Second) // not yet: held by the set
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.Nil(t, y)
	single, err := l.LockAll(ctx, []string{"solo"}, time.Second)
	require.NoError(t, err, "a set of one is a plain lock")
	assert.Equal(t, []string{"solo"}, single.Keys())
	require.NoError(t, single.Unlock(ctx))
	require.NoError(t, all.Unlock(ctx))
	assertNoKeys(t, b)

	// Namespaced: LockAllNs takes the same keys as LockNs.
	nsl := newLocker(t, b, Opts{Namespace: "app"})
	set, err := nsl.LockAllNs(ctx, []string{"m", "n"}, time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"app:m", "app:n"}, set.Keys())
	_, err = nsl.LockNs(ctx, "n", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "LockNs(n) while LockAllNs holds it")
	require.NoError(t, set.Unlock(ctx))

	// Bad sets are refused before any I/O.
	for _, keys := range [][]string{nil, {}, {"a", "a"}, {"a", ""}, {"a", core.FenceKeyPrefix + "a"}} {
		_, err := l.LockAll(ctx, keys, time.Second)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "%q", keys)
		assert.Contains(t, err.Error(), "keys")
	}
	fenced := newLocker(t, b, Opts{Fencing: true})
	_, err = fenced.LockAll(ctx, []string{"a", "b"}, time.Second)
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "fencing with a set")
	assertNoKeys(t, b)

	// Contended sets sharing a key never hold together.
	var holders, overlap atomic.Int32
	lc := newLocker(t, b, Opts{Retry: -1, Delay: 2 * time.Millisecond})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	for i, set := range [][]string{{"p", "q"}, {"q", "r"}, {"r", "p"}} {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				lk, err := lc.LockAll(cctx, set, time.Second)
				if !assert.NoError(t, err, "set %d", i) {
					return
				}
				if holders.Add(1) > 1 {
					overlap.Add(1)
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				assert.NoError(t, lk.Unlock(ctx))
			}
		}()
	}
	for range 3 {
		<-done
	}
	assert.Zero(t, overlap.Load(), "two sets sharing a key held at once")
	assertNoKeys(t, b)
}
