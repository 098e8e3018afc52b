package memlock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/leakcheck"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/memlock"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }

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
	if err != nil {
		t.Fatalf("New(WithClock) err = %v, want nil", err)
	}
	t.Cleanup(func() { _ = m.Destroy() })
	return m, c
}

func TestExpiryIsExact(t *testing.T) {
	ctx := t.Context()
	m, c := newClocked(t)
	lk, err := m.Lock(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf(`Lock("k", 1s) err = %v, want nil`, err)
	}
	if got, want := lk.Expiration(), c.Now().Add(time.Second); !reflect.DeepEqual(got, want) {
		t.Errorf(`Lock("k", 1s).Expiration() = %v, want %v (the clock's now + 1s)`, got, want)
	}

	c.Add(time.Second - time.Nanosecond)
	_, err = m.Lock(ctx, "k", time.Second)
	if !errors.Is(err, lockerr.ErrNotAcquired) {
		t.Fatalf(`Lock("k", 1s) one nanosecond before expiry: err = %v, want ErrNotAcquired`, err)
	}
	ext, err := lk.Extend(ctx, time.Second)
	if err != nil {
		t.Fatalf("Extend(1s) one nanosecond before expiry: err = %v, want nil", err)
	}
	if got, want := ext.Expiration(), c.Now().Add(time.Second); !reflect.DeepEqual(got, want) {
		t.Errorf("Extend(1s).Expiration() = %v, want %v (the clock's now + 1s)", got, want)
	}

	c.Add(time.Second)
	_, err = ext.Extend(ctx, time.Second)
	if !errors.Is(err, lockerr.ErrNotHeld) {
		t.Fatalf("Extend(1s) at the expiration: err = %v, want ErrNotHeld", err)
	}
	if !errors.Is(err, lock.ErrExpired) {
		t.Errorf("Extend(1s) at the expiration: err = %v, want lock.ErrExpired", err)
	}
	if err := ext.Unlock(ctx); !errors.Is(err, lockerr.ErrNotHeld) {
		t.Fatalf("Unlock at the expiration: err = %v, want ErrNotHeld", err)
	}
	_, err = m.Lock(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf(`Lock("k", 1s) at the expiration: err = %v, want nil`, err)
	}
}

func TestExpiredEntriesAreSwept(t *testing.T) {
	ctx := t.Context()
	m, c := newClocked(t)
	// Far more short locks than the sweep threshold, never unlocked: the
	// map must not keep them all. Live keys must survive every sweep.
	live, err := m.Lock(ctx, "live", time.Hour)
	if err != nil {
		t.Fatalf(`Lock("live", 1h) err = %v, want nil`, err)
	}
	for i := range 10_000 {
		key := fmt.Sprint("k", i)
		if _, err := m.Lock(ctx, key, time.Millisecond); err != nil {
			t.Fatalf("Lock(%q, 1ms) err = %v, want nil", key, err)
		}
		c.Add(time.Millisecond)
	}
	if n := memlock.Len(m); n > 200 {
		t.Errorf("entries kept after 10000 locks of 1ms = %d, want at most 200: expired entries kept", n)
	}
	_, err = m.Lock(ctx, "live", time.Second)
	if !errors.Is(err, lockerr.ErrNotAcquired) {
		t.Fatalf(`Lock("live", 1s) while held: err = %v, want ErrNotAcquired: a live key was swept`, err)
	}
	if err := live.Unlock(ctx); err != nil {
		t.Fatalf(`Unlock of "live" err = %v, want nil`, err)
	}
}

func TestOptions(t *testing.T) {
	_, err := memlock.New(memlock.WithDelay(-time.Millisecond))
	if !errors.Is(err, lockerr.ErrInvalidArgument) {
		t.Fatalf("New(WithDelay(-1ms)) err = %v, want ErrInvalidArgument", err)
	}
	if !strings.Contains(err.Error(), "delay") {
		t.Errorf("New(WithDelay(-1ms)) err = %v, want it to name the delay", err)
	}
	_, err = memlock.New(memlock.WithClock(nil))
	if !errors.Is(err, lockerr.ErrInvalidArgument) {
		t.Fatalf("New(WithClock(nil)) err = %v, want ErrInvalidArgument", err)
	}
}

// TestDestroyWhileBusy races Destroy against many callers: every call either
// works or fails with ErrDestroyed, and nothing panics or leaks.
func TestDestroyWhileBusy(t *testing.T) {
	m, err := memlock.New(memlock.WithRetry(-1), memlock.WithDelay(time.Millisecond))
	if err != nil {
		t.Fatalf("New(WithRetry(-1), WithDelay(1ms)) err = %v, want nil", err)
	}
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
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy() = %v, want nil", err)
	}
	wg.Wait()
	close(errs)
	if len(errs) != 16 {
		t.Fatalf("%d of 16 workers stopped with an error, want all: every worker is stopped by Destroy", len(errs))
	}
	for err := range errs {
		if !errors.Is(err, lockerr.ErrDestroyed) {
			t.Errorf("a worker's Lock or Unlock during Destroy: err = %v, want ErrDestroyed", err)
		}
	}
}
