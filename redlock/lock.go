package redlock

import (
	"context"
	"slices"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

// Lock is one acquisition. It is immutable and safe for concurrent use.
type Lock struct {
	c     *Client
	keys  keySet
	value lockValue
	exp   time.Time
	token uint64
	since time.Time // the acquisition's start, for the observer's hold time
}

// Key is the key as stored; for a lock on several keys (LockAll), the
// first.
func (l *Lock) Key() string { return l.keys.first }

// Keys is the lock's keys: Key alone, or all that LockAll locked.
func (l *Lock) Keys() []string {
	if l.keys.all == nil {
		return []string{l.keys.first}
	}
	return slices.Clone(l.keys.all)
}

// Value is the random value this acquisition stored.
func (l *Lock) Value() string { return l.value.s }

// Token is the acquisition's fencing token (see WithFencing); 0 without
// fencing.
func (l *Lock) Token() uint64 { return l.token }

// Expiration is the end of the validity window, with a monotonic reading.
func (l *Lock) Expiration() time.Time { return l.exp }

// Extend resets the key's ttl on every master that still holds this value
// and returns the lock with its new validity, measured from the start of the
// extension. It fails, and a failed Extend never deletes the key, with:
//   - ErrNotHeld (Cause ErrExpired), without any I/O, once Expiration has
//     passed;
//   - ErrNotHeld when too many masters no longer hold this value for a
//     quorum to renew it: the lock is lost;
//   - ErrNoQuorum when too few masters answered, or ctx ended, or the new
//     window closed before a quorum answered (Cause ErrNoValidity): the
//     lock keeps its old Expiration, and Extend may be tried again.
//
// The masters that did renew the key keep it until the new ttl runs out.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	began := core.Now(l.c.opts.observer)
	next, err := l.extend(ctx, ttl)
	core.Report(l.c.opts.observer, observe.KindExtend, l.keys.first, began, l.since, err)
	return next, err
}

func (l *Lock) extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	c := l.c
	if err := c.opts.checkTTL(ttl); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	start := time.Now()
	fail := func(err, cause error, failures []*lockerr.NodeError) (*Lock, error) {
		return nil, &lockerr.Error{Op: "extend", Key: l.keys.first, Attempts: 1, Err: err, Cause: cause, Nodes: failures}
	}
	if !start.Before(l.exp) {
		return fail(lockerr.ErrNotHeld, lockerr.ErrExpired, nil)
	}
	// One round, bounded by the node timeout: Destroy waits for it rather
	// than interrupting it.
	if err := c.inflight.Enter(); err != nil {
		return nil, &lockerr.Error{Op: "extend", Key: l.keys.first, Err: err}
	}
	defer c.inflight.Exit()
	if err := core.CtxErr(ctx); err != nil {
		return fail(lockerr.ErrNoQuorum, err, nil)
	}
	ext := c.send(ctx, extension{keys: l.keys, value: l.value, ttl: ttl}, nil)
	ext.flush()
	defer ext.stop()
	if ext.decide() {
		if exp := core.Validity(start, ttl, drift); time.Now().Before(exp) {
			n := *l
			n.exp = exp
			return &n, nil
		}
		return fail(lockerr.ErrNoQuorum, lockerr.ErrNoValidity, ext.failures())
	}
	ext.wait()
	if ext.lost() {
		return fail(lockerr.ErrNotHeld, nil, ext.failures())
	}
	return fail(lockerr.ErrNoQuorum, core.CtxErr(ctx), ext.failures())
}

// Unlock deletes the key on every master where it still holds this value,
// and nowhere else. The deletes run even when ctx has already ended, each
// bounded by the node timeout, so that a cancelled caller leaves nothing
// behind. It returns nil as soon as a quorum has deleted it (the other
// deletes finish in the background, so a hung master costs nothing here);
// ErrNotHeld when too many masters no longer held this value (the lock had
// expired or was taken over); ErrNoQuorum when too few answered, in which
// case what is left expires with its ttl.
func (l *Lock) Unlock(ctx context.Context) error {
	began := core.Now(l.c.opts.observer)
	err := l.unlock()
	core.Report(l.c.opts.observer, observe.KindUnlock, l.keys.first, began, l.since, err)
	return err
}

func (l *Lock) unlock() error {
	c := l.c
	if err := c.inflight.Enter(); err != nil {
		return &lockerr.Error{Op: "unlock", Key: l.keys.first, Err: err}
	}
	defer c.inflight.Exit()
	start := time.Now()
	rel, handedOver := l.release()
	defer rel.stop()
	if rel.decide() {
		if !handedOver {
			// Announced once a quorum has deleted it, so that the waiters
			// it wakes find a quorum free, by a master that did. This
			// process's waiters, who had a streak, give the others a head
			// start of two of these round trips.
			d := 2 * time.Since(start)
			for key := range core.Each(l.keys.first, l.keys.all) {
				if !c.opts.broken.silent() {
					c.announce(rel.firstYes(), key, l.value)
				}
				c.waiting.WakeLater(key, l.value.s, d)
			}
		}
		return nil
	}
	rel.wait()
	if rel.lost() {
		for key := range core.Each(l.keys.first, l.keys.all) {
			c.waiting.Released(key, l.value.s)
		}
		return &lockerr.Error{Op: "unlock", Key: l.keys.first, Attempts: 1, Err: lockerr.ErrNotHeld, Nodes: rel.failures()}
	}
	return &lockerr.Error{Op: "unlock", Key: l.keys.first, Attempts: 1, Err: lockerr.ErrNoQuorum, Nodes: rel.failures()}
}

// release sends the delete to every master; the caller's context does not
// cut it short. Each goes over the connection that carried the acquiring
// SET, after it, so it cannot overtake a SET still on its way.
//
// When this process has a caller waiting for the key and its turn has come
// (core.Line.HandOver), that caller is woken as soon as the deletes are
// queued, so that its SET travels right behind them, in the same writes,
// and Unlock does not announce the release to other processes (handedOver);
// otherwise Unlock announces it and every process's first waiter races for
// the lock.
func (l *Lock) release() (rel *fanout, handedOver bool) {
	c := l.c
	handedOver = l.keys.all == nil && c.waiting.HandOver(l.keys.first)
	rel = c.send(context.Background(), c.releaseOf(l.keys, l.value), nil)
	if handedOver {
		c.waiting.Released(l.keys.first, l.value.s)
	}
	rel.flush()
	return rel, handedOver
}

// releaseNow releases a lock won while Destroy was starting, and waits for
// the masters' answers.
func (l *Lock) releaseNow() {
	rel, _ := l.release()
	rel.wait()
	rel.stop()
}

// releaseOf is the request that releases keys holding value.
func (c *Client) releaseOf(keys keySet, value lockValue) request {
	if r, ok := c.opts.broken.release(keys); ok {
		return r // the safety suite's broken release (build tag lockbroken)
	}
	return release{keys: keys, value: value}
}
