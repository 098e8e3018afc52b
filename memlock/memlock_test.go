package memlock_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/memlock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a manual clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClocked(t *testing.T, opts ...memlock.Option) (*memlock.Locker, *clock) {
	t.Helper()
	c := &clock{now: time.Unix(1_000_000, 0)}
	m, err := memlock.New(append(opts, memlock.WithClock(c.Now))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Destroy() })
	return m, c
}

func TestExpiryIsExact(t *testing.T) {
	ctx := t.Context()
	m, c := newClocked(t)
	lk, err := m.Lock(ctx, "k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, c.Now().Add(time.Second), lk.Expiration())

	c.Add(time.Second - time.Nanosecond)
	_, err = m.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "one nanosecond before expiry")
	ext, err := lk.Extend(ctx, time.Second)
	require.NoError(t, err, "Extend one nanosecond before expiry")
	assert.Equal(t, c.Now().Add(time.Second), ext.Expiration())

	c.Add(time.Second)
	_, err = ext.Extend(ctx, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld, "Extend at the expiration")
	assert.ErrorIs(t, err, lock.ErrExpired)
	require.ErrorIs(t, ext.Unlock(ctx), lockerr.ErrNotHeld, "Unlock at the expiration")
	_, err = m.Lock(ctx, "k", time.Second)
	require.NoError(t, err, "Lock at the expiration")
}

func TestExpiredEntriesAreSwept(t *testing.T) {
	ctx := t.Context()
	m, c := newClocked(t)
	// Far more short locks than the sweep threshold, never unlocked: the
	// map must not keep them all. Live keys must survive every sweep.
	live, err := m.Lock(ctx, "live", time.Hour)
	require.NoError(t, err)
	for i := range 10_000 {
		_, err := m.Lock(ctx, fmt.Sprint("k", i), time.Millisecond)
		require.NoError(t, err)
		c.Add(time.Millisecond)
	}
	assert.LessOrEqual(t, memlock.Len(m), 200, "expired entries kept")
	_, err = m.Lock(ctx, "live", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "a live key was swept")
	require.NoError(t, live.Unlock(ctx))
}

func TestOptions(t *testing.T) {
	_, err := memlock.New(memlock.WithDelay(-time.Millisecond))
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "delay")
	_, err = memlock.New(memlock.WithClock(nil))
	require.ErrorIs(t, err, lockerr.ErrInvalidArgument)
}

// TestDestroyWhileBusy races Destroy against many callers: every call either
// works or fails with ErrDestroyed, and nothing panics or leaks.
func TestDestroyWhileBusy(t *testing.T) {
	m, err := memlock.New(memlock.WithRetry(-1), memlock.WithDelay(time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Until Destroy stops it (bounded, should Destroy never come).
			for i := range 1_000_000 {
				lk, err := m.Lock(ctx, fmt.Sprint("k", (w+i)%4), time.Second)
				if err != nil {
					errs <- err
					return
				}
				if err := lk.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, m.Destroy())
	wg.Wait()
	close(errs)
	require.Len(t, errs, 16, "every worker is stopped by Destroy")
	for err := range errs {
		assert.ErrorIs(t, err, lockerr.ErrDestroyed)
	}
}
