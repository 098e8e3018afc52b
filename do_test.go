package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/memlock"
)

// fakeLock and fakeLocker are a Locker whose one lock can be checked for
// release, for Do's bookkeeping.
type fakeLocker struct {
	mu       sync.Mutex
	unlocked int
}

type fakeLock struct{ l *fakeLocker }

func (f *fakeLocker) Lock(context.Context, string, time.Duration) (Lock, error) {
	return fakeLock{f}, nil
}
func (f *fakeLocker) LockNs(ctx context.Context, k string, ttl time.Duration) (Lock, error) {
	return f.Lock(ctx, k, ttl)
}
func (f *fakeLocker) LockAll(ctx context.Context, k []string, ttl time.Duration) (Lock, error) {
	return f.Lock(ctx, k[0], ttl)
}
func (f *fakeLocker) LockAllNs(ctx context.Context, k []string, ttl time.Duration) (Lock, error) {
	return f.Lock(ctx, k[0], ttl)
}
func (f *fakeLocker) Destroy() error                                   { return nil }
func (fakeLock) Key() string                                           { return "k" }
func (fakeLock) Keys() []string                                        { return []string{"k"} }
func (fakeLock) Value() string                                         { return "v" }
func (fakeLock) Token() uint64                                         { return 0 }
func (fakeLock) Expiration() time.Time                                 { return time.Now().Add(time.Hour) }
func (l fakeLock) Extend(context.Context, time.Duration) (Lock, error) { return l, nil }
func (l fakeLock) Unlock(context.Context) error {
	l.l.mu.Lock()
	defer l.l.mu.Unlock()
	l.l.unlocked++
	return nil
}

// TestDoPanic: a function that panics still has its lock released, and the
// keeper stopped, before the panic goes on.
func TestDoPanic(t *testing.T) {
	f := &fakeLocker{}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf(`Do(a function that panics with "boom"): recovered %#v, want "boom" (the panic goes on)`, r)
			}
		}()
		_ = Do(t.Context(), f, "k", time.Second, func(context.Context, Lock) error { panic("boom") })
	}()
	if f.unlocked != 1 {
		t.Errorf("Do(a function that panics): %d Unlock calls, want 1: the lock was not released after the panic", f.unlocked)
	}
}

// TestDoSettings: renewals that could not come before the lock is lost are
// refused.
func TestDoSettings(t *testing.T) {
	f := &fakeLocker{}
	nop := func(context.Context, Lock) error { return nil }
	for _, tc := range []struct {
		name string
		opts []DoOption
	}{
		{"RenewEvery(99ms)", []DoOption{RenewEvery(99 * time.Millisecond)}},
		{"Guard(99ms)", []DoOption{Guard(99 * time.Millisecond)}},
		{"RenewEvery(60ms), Guard(40ms)", []DoOption{RenewEvery(60 * time.Millisecond), Guard(40 * time.Millisecond)}},
		{"RenewEvery(0)", []DoOption{RenewEvery(0)}},
		{"Guard(-1)", []DoOption{Guard(-1)}},
	} {
		err := Do(t.Context(), f, "k", 100*time.Millisecond, nop, tc.opts...)
		if !errors.Is(err, lockerr.ErrInvalidArgument) {
			t.Errorf("Do(ttl 100ms, %s) err = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if f.unlocked != 0 {
		t.Errorf("Do with bad settings: %d Unlock calls, want 0: locked despite bad settings", f.unlocked)
	}
	if err := Do(t.Context(), f, "k", 100*time.Millisecond, nop, RenewEvery(50*time.Millisecond), Guard(10*time.Millisecond)); err != nil {
		t.Fatalf("Do(ttl 100ms, RenewEvery(50ms), Guard(10ms)) err = %v, want nil", err)
	}
}

// stallLock is a lock valid until exp whose Extend takes stall to return,
// whatever its context says, as one whose write to a master is stuck would.
type stallLock struct {
	fakeLock
	exp   time.Time
	stall time.Duration
}

func (l stallLock) Expiration() time.Time { return l.exp }
func (l stallLock) Extend(context.Context, time.Duration) (Lock, error) {
	time.Sleep(l.stall)
	return nil, lockerr.ErrNoQuorum
}

type stallLocker struct {
	fakeLocker
	stall time.Duration
}

func (f *stallLocker) Lock(_ context.Context, _ string, ttl time.Duration) (Lock, error) {
	return stallLock{fakeLock{&f.fakeLocker}, time.Now().Add(ttl), f.stall}, nil
}

// TestDoExpiresDuringStalledExtend: the function's context ends, as lost,
// before the validity does, even while an Extend is stuck well past it.
// (The guard, 60 ms, leaves room for a loaded machine; the old keeper,
// which waited for the Extend, missed by 800 ms.) A function that returns
// while the lock is valid is not told it lost it, even when the validity
// ends while Do waits for that Extend.
func TestDoExpiresDuringStalledExtend(t *testing.T) {
	const ttl = 300 * time.Millisecond
	f := &stallLocker{stall: time.Second}
	var ended, exp time.Time
	err := Do(t.Context(), f, "k", ttl, func(ctx context.Context, l Lock) error {
		exp = l.Expiration()
		<-ctx.Done()
		ended = time.Now()
		return nil
	}, Guard(60*time.Millisecond))
	if !errors.Is(err, lockerr.ErrLost) {
		t.Errorf("Do(ttl 300ms, Extend stuck 1s) err = %v, want ErrLost", err)
	}
	if !errors.Is(err, lockerr.ErrExpired) {
		t.Errorf("Do(ttl 300ms, Extend stuck 1s) err = %v, want ErrExpired", err)
	}
	if !ended.Before(exp) {
		t.Errorf("Do(ttl 300ms, Extend stuck 1s): the function's context ended %v after the validity did, want before", ended.Sub(exp))
	}
	if f.unlocked != 1 {
		t.Errorf("Do(ttl 300ms, Extend stuck 1s): %d Unlock calls, want 1: the lock was not released", f.unlocked)
	}

	err = Do(t.Context(), f, "k", ttl, func(ctx context.Context, l Lock) error {
		time.Sleep(ttl / 2) // returns while the Extend that began at ttl/3 hangs
		return ctx.Err()
	}, Guard(60*time.Millisecond))
	if err != nil {
		t.Errorf("Do(ttl 300ms, a function that returns at 150ms while an Extend hangs) err = %v, want nil: a function that returned in time was told the lock was lost", err)
	}
	if f.unlocked != 2 {
		t.Errorf("after the second Do: %d Unlock calls in all, want 2: the lock was not released", f.unlocked)
	}
}

// TestDoMaxWait: MaxWait bounds the wait for the lock, not the function:
// a key held elsewhere is given up on after about d (the Locker retries
// forever), and a function that runs longer than d keeps its context.
func TestDoMaxWait(t *testing.T) {
	m, err := memlock.New(memlock.WithRetry(-1), memlock.WithDelay(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l := InMemory(m)
	defer l.Destroy()
	held, err := l.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = Do(t.Context(), l, "k", time.Second, func(context.Context, Lock) error { return nil }, MaxWait(100*time.Millisecond))
	if !errors.Is(err, ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do(held key, MaxWait(100ms)) err = %v, want ErrNotAcquired and DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Do(held key, MaxWait(100ms)) took %v", took)
	}
	if err := held.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = Do(t.Context(), l, "k", time.Second, func(ctx context.Context, _ Lock) error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the function's context ended: %w", context.Cause(ctx))
		case <-time.After(300 * time.Millisecond): // past MaxWait
			return nil
		}
	}, MaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("Do(free key, MaxWait(100ms)) with a 300ms function: err = %v, want nil", err)
	}
	if err := Do(t.Context(), l, "k", time.Second, func(context.Context, Lock) error { return nil }, MaxWait(-1)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Do(MaxWait(-1)) err = %v, want ErrInvalidArgument", err)
	}
}
