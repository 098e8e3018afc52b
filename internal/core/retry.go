package core

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Retry is the schedule shared by both backends, with the semantics of the
// original package: Count retries after the first attempt (so Count+1
// attempts in all; a negative Count retries until the context ends), and a
// wait of max(0, Delay + uniform(-Jitter, +Jitter)) between attempts.
// Retry is a value with no state, so one Retry can serve any number of calls.
type Retry struct {
	Count  int
	Delay  time.Duration
	Jitter time.Duration
}

// More reports whether another attempt may follow attempt number n (1-based).
func (r Retry) More(n int) bool {
	return r.Count < 0 || n <= r.Count
}

// Wait returns the pause before the next attempt, drawing the jitter from
// rnd, which returns a uniform value in [0, n) (rand.Int64N in production).
func (r Retry) Wait(rnd func(n int64) int64) time.Duration {
	// Clamped so that no setting, however large, can overflow.
	const limit = time.Duration(math.MaxInt64 / 4)
	d, j := min(r.Delay, limit), min(r.Jitter, limit)
	if j > 0 {
		d += time.Duration(rnd(2*int64(j)+1)) - j
	}
	return max(d, 0)
}

// Attempt is the outcome of one try: held, or the per-node failures that
// explain why not.
type Attempt[L any] struct {
	Lock  L
	OK    bool
	Nodes []*NodeError
	Why   error // why it failed when no master is to blame (ErrNoValidity)
}

// Run calls try until it succeeds, the schedule runs out, ctx ends, or
// stop ([Life.Done]; nil for none) is closed. try must release anything
// partly acquired before it returns a failed attempt. The error is an
// *Error whose Cause is CtxErr(ctx) when ctx ended the loop, ErrDestroyed
// when stop did. A lock won while Destroy was starting could never be
// unlocked, so Run hands it to undo and fails.
//
// With w, a caller whose first attempt fails (or who finds others of this
// process already waiting for key) joins key's line in w. While it waits it
// retries when the lock is released and it is first in line, or when its
// retry delay has passed and it is first in line; a delay that passes while
// others are ahead of it counts as an attempt without one being made, since
// the caller ahead is trying for the same lock, except the last, which is
// always made. So the schedule still bounds how long Lock waits, a release
// starts one attempt per process, and a caller that gives up has asked the
// masters at least once.
func Run[L any](ctx context.Context, stop <-chan struct{}, r Retry, key string, try func(context.Context) Attempt[L], undo func(L), w *Waiters) (L, error) {
	var (
		zero   L
		last   Attempt[L]
		timer  *time.Timer
		ticket *Ticket
		epoch  uint64
		busy   bool
	)
	if r.Count == 0 {
		w = nil // a single attempt: nothing to wait for
	}
	if w != nil {
		epoch, busy = w.Peek(key)
		defer func() {
			if ticket != nil {
				ticket.Leave()
			}
		}()
	}
	for n := 0; ; n++ {
		// Checked before every attempt: a caller who has gone never acquires.
		if err := ended(ctx, stop); err != nil {
			return zero, &Error{Op: "lock", Key: key, Attempts: n, Err: ErrNotAcquired, Cause: err, Nodes: last.Nodes}
		}
		if n > 0 {
			if !r.More(n) {
				return zero, &Error{Op: "lock", Key: key, Attempts: n, Err: ErrNotAcquired, Cause: last.Why, Nodes: last.Nodes}
			}
			if w != nil && ticket == nil {
				ticket = w.Join(key, epoch)
			}
			if timer == nil {
				timer = time.NewTimer(r.Wait(rand.Int64N))
			} else {
				timer.Reset(r.Wait(rand.Int64N))
			}
			var wake <-chan struct{}
			if ticket != nil {
				wake = ticket.Wake()
			}
			select {
			case <-timer.C:
				if ticket != nil {
					if !ticket.First() && r.More(n+1) {
						continue // the caller ahead tries for it
					}
					select { // this attempt serves a release seen meanwhile too
					case <-wake:
					default:
					}
				}
			case <-wake:
				timer.Stop()
			case <-ctx.Done():
				timer.Stop()
				return zero, &Error{Op: "lock", Key: key, Attempts: n, Err: ErrNotAcquired, Cause: CtxErr(ctx), Nodes: last.Nodes}
			case <-stop:
				timer.Stop()
				return zero, &Error{Op: "lock", Key: key, Attempts: n, Err: ErrNotAcquired, Cause: ErrDestroyed, Nodes: last.Nodes}
			}
		} else if busy {
			continue // others of this process wait already: queue behind them
		}
		a := try(ctx)
		if a.OK {
			if timer != nil {
				timer.Stop()
			}
			if closed(stop) {
				undo(a.Lock)
				return zero, &Error{Op: "lock", Key: key, Attempts: n + 1, Err: ErrNotAcquired, Cause: ErrDestroyed}
			}
			return a.Lock, nil
		}
		last = a
	}
}

// ended is why a Lock call must stop before its next attempt: Destroy has
// started (stop closed), or ctx has ended; nil if neither.
func ended(ctx context.Context, stop <-chan struct{}) error {
	if closed(stop) {
		return ErrDestroyed
	}
	return CtxErr(ctx)
}

// closed reports whether stop is closed; a nil stop never is.
func closed(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
