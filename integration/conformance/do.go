package conformance

import (
	"context"
	"errors"
	"time"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock"
	"github.com/leverege/lock/lockerr"
)

// testDo: work under a lock kept alive by Do.
func testDo(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	// Long enough that a keeper or a master stalled for a quarter of a
	// second (a loaded machine, the race detector) still renews in time:
	// renewals every ttl/3, the lock lost ttl less drift and guard after
	// the last good one began.
	const ttl = 400 * time.Millisecond

	t.Run("KeepsLock", func(t *testing.T) {
		// The function runs for three ttls; all the while, no one else
		// gets the key, and the function's context stays alive.
		var checks int
		err := lock.Do(ctx, l, "kept", ttl, func(fctx context.Context, held lock.Lock) error {
			assert.Equal(t, "kept", held.Key())
			until := time.Now().Add(3 * ttl)
			for time.Now().Before(until) {
				if _, err := l.Lock(ctx, "kept", time.Second); !errors.Is(err, lockerr.ErrNotAcquired) {
					return errors.New("the key was free while Do held it")
				}
				if fctx.Err() != nil {
					return context.Cause(fctx)
				}
				checks++
				time.Sleep(ttl / 10)
			}
			return nil
		})
		require.NoError(t, err)
		assert.Greater(t, checks, 10)
		assertNoKeys(t, b) // unlocked when the function returned
		lk, err := l.Lock(ctx, "kept", time.Second)
		require.NoError(t, err, "not unlocked after the function")
		require.NoError(t, lk.Unlock(ctx))
	})

	t.Run("Lost", func(t *testing.T) {
		// Someone releases the lock behind Do's back: the next Extend finds
		// it gone, and the function's context ends, before the validity,
		// with ErrLost; Do reports the function's error and the loss apart.
		errWork := errors.New("work interrupted")
		var endedBy error
		var endedAt, validTo time.Time
		err := lock.Do(ctx, l, "lost", ttl, func(fctx context.Context, held lock.Lock) error {
			validTo = held.Expiration()
			require.NoError(t, held.Unlock(ctx)) // taken away
			select {
			case <-fctx.Done():
				endedAt, endedBy = time.Now(), context.Cause(fctx)
				return errWork
			case <-time.After(5 * time.Second):
				return nil
			}
		})
		require.ErrorIs(t, err, errWork)
		require.ErrorIs(t, err, lockerr.ErrLost)
		require.ErrorIs(t, endedBy, lockerr.ErrLost)
		assert.True(t, endedAt.Before(validTo), "cancelled at %v, after the validity %v", endedAt, validTo)
		assertNoKeys(t, b)
	})

	t.Run("FunctionError", func(t *testing.T) {
		boom := errors.New("boom")
		err := lock.Do(ctx, l, "fails", ttl, func(context.Context, lock.Lock) error { return boom })
		require.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, lockerr.ErrLost)
		assertNoKeys(t, b)
	})

	t.Run("NotAcquired", func(t *testing.T) {
		lk, err := l.Lock(ctx, "busy", time.Second)
		require.NoError(t, err)
		called := false
		err = lock.Do(ctx, l, "busy", ttl, func(context.Context, lock.Lock) error { called = true; return nil })
		require.ErrorIs(t, err, lockerr.ErrNotAcquired)
		assert.False(t, called)
		require.NoError(t, lk.Unlock(ctx))
	})

	t.Run("BadInput", func(t *testing.T) {
		err := lock.Do(ctx, l, "k", ttl, nil)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "fn")
		err = lock.Do(ctx, l, "k", ttl, func(context.Context, lock.Lock) error { return nil }, lock.RenewEvery(ttl))
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "renew every")
		err = lock.Do(ctx, l, "", ttl, func(context.Context, lock.Lock) error { return nil })
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
		assertNoKeys(t, b)
	})
}
