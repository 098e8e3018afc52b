package lock

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
)

// DoOption tunes [Do].
type DoOption func(*doOptions)

type doOptions struct {
	every time.Duration // between the start of one Extend and the next
	guard time.Duration // the function's context ends this long before the validity
	ns    bool
	wait  time.Duration // > 0: the most Do waits for the lock
}

// RenewEvery sets how often Do extends the lock: an Extend starts d after
// the previous one (or the acquisition) started. Default ttl/3, so that two
// more tries fit in the validity should one fail. d must be positive and
// less than the ttl.
func RenewEvery(d time.Duration) DoOption { return func(o *doOptions) { o.every = d } }

// Guard sets how long before the end of the validity window Do cancels the
// function's context if no Extend has succeeded by then. Default ttl/50 (at
// least 1ms): the function learns that the lock is lost before another
// client can hold it.
func Guard(d time.Duration) DoOption { return func(o *doOptions) { o.guard = d } }

// InNamespace makes Do lock "<namespace>:<key>", as LockNs does.
func InNamespace() DoOption { return func(o *doOptions) { o.ns = true } }

// Namespaced is the former name of InNamespace.
//
// Deprecated: use InNamespace.
func Namespaced() DoOption { return InNamespace() }

// MaxWait bounds how long Do waits for the lock, without bounding the
// function: Lock is called with a context that ends d after Do was called
// (or with ctx, if that ends first), while the function's context derives
// from ctx alone. The retries are the Locker's; give it a schedule that
// lasts (retryCount -1) for Do to wait the whole d.
func MaxWait(d time.Duration) DoOption { return func(o *doOptions) { o.wait = d } }

// Do acquires key for ttl, runs fn while it holds the lock, and unlocks it
// when fn returns. While fn runs, Do extends the lock in the background (see
// RenewEvery), and it cancels fn's context, with a cause matching lockerr.ErrLost,
// the moment the lock can no longer be trusted: an Extend found the lock
// gone (ErrNotHeld), or the validity window is about to end (see Guard)
// before an Extend succeeded. An Extend that merely failed to reach a quorum
// is tried again while the validity lasts. fn should stop its work when its
// context ends; Do waits for fn to return.
//
// Do returns the Lock error when the lock was not acquired, and otherwise
// fn's error, joined with an *Error matching lockerr.ErrLost when the lock was lost
// while fn ran, and with Unlock's error, if any: errors.Is tells them apart.
// The lock fn gets is the one acquired; Do extends its own copies, so its
// Expiration is the first validity only: take the lock's state from fn's
// context, which Do ends when the lock can no longer be trusted.
func Do(ctx context.Context, l Locker, key string, ttl time.Duration, fn func(context.Context, Lock) error, opts ...DoOption) error {
	o := doOptions{every: ttl / 3, guard: max(ttl/50, time.Millisecond)}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case l == nil:
		return core.Invalid("locker", "must not be nil")
	case fn == nil:
		return core.Invalid("fn", "must not be nil")
	case o.every <= 0 || o.every >= ttl:
		return core.Invalid("renew every", "%v must be positive and less than the ttl %v", o.every, ttl)
	case o.guard < 0 || o.guard >= ttl:
		return core.Invalid("guard", "%v must be in [0, ttl %v)", o.guard, ttl)
	case o.every+o.guard >= ttl:
		return core.Invalid("renew every", "%v plus the guard %v must be less than the ttl %v, or the lock is lost before it is renewed", o.every, o.guard, ttl)
	case o.wait < 0:
		return core.Invalid("max wait", "%v must not be negative", o.wait)
	}
	held, err := acquire(ctx, l, key, ttl, o)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	life, stop := context.WithCancel(context.Background())
	k := &keeper{lock: held, ttl: ttl, o: o, cancel: cancel, life: life, stop: stop}
	k.wg.Go(k.run)
	var (
		uerr     error
		finished bool
	)
	finish := func() {
		finished = true
		k.end()
		k.stop()
		k.wg.Wait()
		cancel(nil)
		// The deletes are sent even when ctx has ended, as Unlock promises.
		uerr = k.lock.Unlock(context.WithoutCancel(ctx))
	}
	// Should fn panic, the lock is still released (and the panic goes on).
	defer func() {
		if !finished {
			finish()
		}
	}()
	ferr := fn(fctx, held)
	finish()
	lost := k.loss()
	if lost != nil && errors.Is(uerr, lockerr.ErrNotHeld) {
		uerr = nil // already said: the lock was lost
	}
	return errors.Join(ferr, lost, uerr)
}

// acquire is Do's Lock (or LockNs), bounded by MaxWait.
func acquire(ctx context.Context, l Locker, key string, ttl time.Duration, o doOptions) (Lock, error) {
	if o.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
	}
	if o.ns {
		return l.LockNs(ctx, key, ttl)
	}
	return l.Lock(ctx, key, ttl)
}

// keeper extends a lock while Do's function runs.
type keeper struct {
	lock   Lock // the latest extension; read by Do only after wg.Wait
	ttl    time.Duration
	o      doOptions
	cancel context.CancelCauseFunc
	life   context.Context // ends with Do; bounds the Extends
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	lost  error
	ended bool // fn returned: a loss seen from then on is not fn's
}

func (k *keeper) run() {
	start := time.Now() // after Lock returned: later than the acquisition, so renewals come early, never late
	renew := time.NewTimer(time.Until(start.Add(k.o.every)))
	defer renew.Stop()
	// The function's context ends at the guard before the validity's end
	// by a timer of its own, not by this loop, which may be inside an
	// Extend that is slow to return (one whose write to a master is stuck
	// does not see its context end): an Extend in flight never delays it.
	key := k.lock.Key()
	expired := make(chan struct{})
	expire := time.AfterFunc(time.Until(k.lock.Expiration().Add(-k.o.guard)), func() {
		k.fail(&lockerr.Error{Op: "do", Key: key, Err: lockerr.ErrLost, Cause: lockerr.ErrExpired})
		close(expired)
	})
	defer expire.Stop()
	// The Extends are bounded by the stop of Do, and each by the time left.
	for {
		select {
		case <-k.life.Done():
			return
		case <-expired:
			return
		case <-renew.C:
		}
		begun := time.Now()
		// Do's end interrupts an Extend in flight.
		ctx, cancel := context.WithDeadline(k.life, k.lock.Expiration().Add(-k.o.guard))
		next, err := k.lock.Extend(ctx, k.ttl)
		cancel()
		switch {
		case err == nil:
			k.lock = next // Do unlocks the latest
			if !expire.Stop() {
				return // too late: the function was told the lock is lost
			}
			renew.Reset(time.Until(begun.Add(k.o.every)))
			expire.Reset(time.Until(next.Expiration().Add(-k.o.guard)))
		case errors.Is(err, lockerr.ErrNotHeld):
			k.fail(&lockerr.Error{Op: "do", Key: key, Err: lockerr.ErrLost, Cause: err})
			return
		default:
			// Not known to be lost (too few masters answered): try again
			// soon, while the validity lasts; expire ends it otherwise.
			renew.Reset(max(k.o.every/4, time.Millisecond))
		}
	}
}

// fail records the loss, the first one only, and ends the function's
// context with it, unless the function has returned already (Unlock then
// reports what became of the lock).
func (k *keeper) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lost == nil && !k.ended {
		k.lost = err
		k.cancel(err)
	}
}

// end records that the function returned.
func (k *keeper) end() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
}

func (k *keeper) loss() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}

// Context returns a context that ends when parent does or when l's validity
// window ends, whichever comes first: its deadline is l.Expiration(). Work
// that must not outlive the lock can run under it; after an Extend, take a
// new one from the new Lock.
func Context(parent context.Context, l Lock) (context.Context, context.CancelFunc) {
	return context.WithDeadline(parent, l.Expiration())
}
