package core

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
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

// Tries is the schedule of one Lock call, driven by the backend's loop:
//
//	var t core.Tries
//	t.Start(ctx, closing, retry, line, key, observer)
//	defer t.Stop()
//	for t.Next() {
//		l, failure := attempt()
//		if l == nil { t.Failed(failure); continue }
//		if err := t.Won(); err != nil { release(l); return nil, err }
//		return l, nil
//	}
//	return nil, t.Err()
//
// Next waits as the schedule says and reports whether to make an attempt;
// it returns false when the schedule has run out, ctx has ended or
// closing ([InFlight.Closing]) is closed, and Err then says why, as an
// *lockerr.Error whose Cause is CtxErr(ctx) when ctx ended the call, lockerr.ErrDestroyed
// when closing did, and otherwise the last attempt's why. A lock won while
// Destroy was starting could never be unlocked, so Won then fails and the
// caller releases it.
//
// With a line, a caller whose first attempt fails (or who finds others of
// this process already waiting for key) joins key's line. While it waits
// it tries again when the lock is released and it is first in line, or
// when its retry delay has passed and it is first in line; a delay that
// passes while others are ahead of it counts as an attempt without one
// being made, since the caller ahead is trying for the same lock, except
// the last, which is always made. So the schedule still bounds how long
// Lock waits, a release starts one attempt per process, and a caller that
// gives up has asked the masters at least once.
//
// With an observer, every attempt made (observe.KindAttempt) and the call's
// outcome (observe.KindLock) are reported. A Tries is for one call, on one
// goroutine.
type Tries struct {
	ctx     context.Context
	closing <-chan struct{}
	retry   Retry
	key     string
	obs     observe.Observer

	line   *Line
	ticket *Ticket
	epoch  uint64 // releases of key seen before the first attempt
	busy   bool   // others of this process waited for key already
	timer  *time.Timer

	n     int                  // attempts counted: made, or passed behind others in line
	made  int                  // attempts made, for the observer
	nodes []*lockerr.NodeError // the last attempt's failures
	why   error                // why the last attempt failed when no master is to blame
	final bool                 // the last attempt's failure will not pass by retrying
	err   error                // why the call ended, once it has

	began, at time.Time // of the call and of the attempt, with an observer
}

// Start begins the schedule of a Lock call on key. line may be nil (a set
// of keys, which has no line), as may obs.
func (t *Tries) Start(ctx context.Context, closing <-chan struct{}, r Retry, line *Line, key string, obs observe.Observer) {
	*t = Tries{ctx: ctx, closing: closing, retry: r, key: key, obs: obs}
	if r.Count != 0 && line != nil { // a single attempt has nothing to wait for
		t.line = line
		t.epoch, t.busy = line.Peek(key)
	}
	if obs != nil {
		t.began = time.Now()
	}
}

// Next waits until the next attempt is due and reports whether to make it.
func (t *Tries) Next() bool {
	for {
		// Checked before every attempt: a caller who has gone never acquires.
		if err := ended(t.ctx, t.closing); err != nil {
			return t.end(err)
		}
		if t.n > 0 {
			if t.final || !t.retry.More(t.n) {
				return t.end(t.why)
			}
			if t.line != nil && t.ticket == nil {
				t.ticket = t.line.Join(t.key, t.epoch)
			}
			if t.timer == nil {
				t.timer = time.NewTimer(t.retry.Wait(rand.Int64N))
			} else {
				t.timer.Reset(t.retry.Wait(rand.Int64N))
			}
			var wake <-chan struct{}
			if t.ticket != nil {
				wake = t.ticket.Wake()
			}
			select {
			case <-t.timer.C:
				if t.ticket != nil {
					if !t.ticket.First() && t.retry.More(t.n+1) {
						t.n++ // the caller ahead tries for it
						continue
					}
					select { // this attempt serves a release seen meanwhile too
					case <-wake:
					default:
					}
				}
			case <-wake:
				t.timer.Stop()
			case <-t.ctx.Done():
				t.timer.Stop()
				return t.end(CtxErr(t.ctx))
			case <-t.closing:
				t.timer.Stop()
				return t.end(lockerr.ErrDestroyed)
			}
		} else if t.busy {
			t.n++ // others of this process wait already: queue behind them
			continue
		}
		t.n++
		t.made++
		if t.obs != nil {
			t.at = time.Now()
		}
		return true
	}
}

// Failure is why an attempt failed.
type Failure struct {
	Nodes []*lockerr.NodeError // the masters to blame, in master order
	Why   error                // why, when no single master is to blame (lockerr.ErrNoValidity, lockerr.ErrNoQuorum, ...)
	Final bool                 // retrying cannot mend it (masters refuse this client's credentials, say)
}

// Failed records why the attempt Next allowed failed. The attempt must
// have released whatever it partly acquired. After a final failure, Next
// makes no more attempts.
func (t *Tries) Failed(f Failure) {
	nodes, why := f.Nodes, f.Why
	t.nodes, t.why, t.final = nodes, why, f.Final
	if t.obs != nil { // the attempt's own detail; the Lock's error says the rest
		t.obs.Observe(observe.Event{Kind: observe.KindAttempt, Key: t.key, Took: time.Since(t.at),
			Err: &lockerr.Error{Op: "lock", Key: t.key, Attempts: 1, Err: lockerr.ErrNotAcquired, Cause: why, Nodes: nodes}})
	}
}

// Won records that the attempt Next allowed acquired the lock. It fails
// when Destroy has started meanwhile: the caller then releases the lock and
// returns the error.
func (t *Tries) Won() error {
	if t.obs != nil {
		t.obs.Observe(observe.Event{Kind: observe.KindAttempt, Key: t.key, Took: time.Since(t.at)})
	}
	if closed(t.closing) {
		t.nodes, t.why = nil, nil
		t.end(lockerr.ErrDestroyed)
		return t.err
	}
	if t.obs != nil {
		t.obs.Observe(observe.Event{Kind: observe.KindLock, Key: t.key, Took: time.Since(t.began), Attempts: t.made})
	}
	return nil
}

// Err is why the call ended without a lock: an *lockerr.Error.
func (t *Tries) Err() error { return t.err }

// Stop ends the schedule: the caller leaves the line.
func (t *Tries) Stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.ticket != nil {
		t.ticket.Leave()
		t.ticket = nil
	}
}

// end records why the call ended and reports false, for Next. When the
// context or Destroy ended it, the last attempt's why is kept beside that
// cause, so that errors.Is still tells "too few masters" (lockerr.ErrNoQuorum)
// from "held elsewhere".
func (t *Tries) end(cause error) bool {
	if t.why != nil && cause != t.why {
		cause = &causes{ended: cause, last: t.why}
	}
	t.err = &lockerr.Error{Op: "lock", Key: t.key, Attempts: t.n, Err: lockerr.ErrNotAcquired, Cause: cause, Nodes: t.nodes}
	if t.obs != nil {
		t.obs.Observe(observe.Event{Kind: observe.KindLock, Key: t.key, Err: t.err, Took: time.Since(t.began), Attempts: t.made})
	}
	return false
}

// ended is why a Lock call must stop before its next attempt: Destroy has
// started (closing is closed), or ctx has ended; nil if neither.
func ended(ctx context.Context, closing <-chan struct{}) error {
	if closed(closing) {
		return lockerr.ErrDestroyed
	}
	return CtxErr(ctx)
}

// closed reports whether c is closed; a nil c never is.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// causes is the Cause of a Lock that the context or Destroy ended after
// an attempt that failed for a reason of its own.
type causes struct{ ended, last error }

func (c *causes) Error() string {
	return c.ended.Error() + " (last attempt: " + strings.TrimPrefix(c.last.Error(), "lock: ") + ")"
}

func (c *causes) Unwrap() []error { return []error{c.ended, c.last} }
