package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
)

// Lock acquires key as given for ttl, retrying as the options say. The
// ttl is used in whole milliseconds and must be larger than the drift
// allowance (round(driftFactor*ttl) + 2ms). When ctx ends first the error
// matches both ErrNotAcquired and ctx's error.
func (c *Client) Lock(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	return c.acquire(ctx, newKeySet(key, nil), ttl)
}

// LockNs is Lock on "<namespace>:<key>".
func (c *Client) LockNs(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	return c.Lock(ctx, core.Namespaced(c.opts.namespace, key), ttl)
}

// LockAll acquires every key in keys, or none, for ttl: on each master all
// the keys are set in one script, or none is, and the lock is held when a
// quorum of masters set them all. Extend and Unlock act on all of them. The
// lock's Key is keys[0]. keys must not be empty nor hold a key twice;
// fencing tokens are for single keys, so LockAll refuses to run with
// fencing on. Waiters for a set of keys are not woken by releases: they
// retry on their schedule.
func (c *Client) LockAll(ctx context.Context, keys []string, ttl time.Duration) (*Lock, error) {
	first, set, err := core.KeySet(keys, c.opts.fencing)
	if err != nil {
		return nil, err
	}
	return c.acquire(ctx, newKeySet(first, set), ttl)
}

// LockAllNs is LockAll on "<namespace>:<key>" for every key.
func (c *Client) LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (*Lock, error) {
	ns, err := core.NamespacedAll(c.opts.namespace, keys)
	if err != nil {
		return nil, err
	}
	return c.LockAll(ctx, ns, ttl)
}

// acquire makes attempts as the retry schedule says until one wins.
func (c *Client) acquire(ctx context.Context, keys keySet, ttl time.Duration) (*Lock, error) {
	if err := c.opts.checkTTL(ttl); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	if err := c.inflight.Enter(); err != nil {
		return nil, &lockerr.Error{Op: "lock", Key: keys.first, Err: err}
	}
	defer c.inflight.Exit()
	line := &c.waiting
	if keys.all != nil {
		line = nil // a line is per key; a set of keys retries on its schedule
	}
	var tries core.Tries
	tries.Start(ctx, c.inflight.Closing(), c.opts.retry, line, keys.first, c.opts.observer)
	defer tries.Stop()
	for tries.Next() {
		l, failure := c.attempt(keys, ttl, drift)
		if l == nil {
			tries.Failed(failure)
			continue
		}
		if err := tries.Won(); err != nil {
			// Destroy has started: every later call fails, so the lock
			// could never be unlocked.
			l.releaseNow()
			return nil, err
		}
		return l, nil
	}
	return nil, tries.Err()
}

// attempt is one round of the algorithm, with a value of its own (128
// random bits) so that nothing a failed round left behind is mistaken for
// it. It returns the lock, or why it failed. The requests are not cut short
// when the caller's context ends: each is bounded by the node timeout
// anyway, and a SET still in flight when the outcome is decided must land
// (or fail) on its own, so that the lock is held, or released, on every
// master that can.
func (c *Client) attempt(keys keySet, ttl, drift time.Duration) (*Lock, core.Failure) {
	if err := c.contacts.sameServerErr(); err != nil {
		return nil, core.Failure{Why: err, Final: true}
	}
	value := newLockValue(rand.Text())
	// The validity is measured from before the requests go out.
	start := time.Now()
	// 1. Send SET NX PX to every master at once.
	acq := c.send(context.Background(), acquisition{keys: keys, value: value, ttl: ttl,
		restartDelay: c.opts.restartDelay, fence: c.opts.fencing}, nil)
	acq.flush()
	// 2. Count the votes until a quorum said yes or can no longer.
	granted := acq.decide()
	if !granted {
		// 5 (early). Release it on every master it may have reached, at
		// once: a delete queued only once the masters still pending are
		// given up on would race their connections' readers giving up too.
		// undo hears every master out.
		c.undo(acq, keys, value)
	} else if !c.contacts.introduced.Load() {
		// A Client's first attempt hears every master out (each within
		// the node timeout), so that all their run_ids are known.
		acq.wait()
	}
	c.contacts.introduced.Store(true)
	// A connection that opened during this attempt may have shown two
	// masters to be one server: its INFO came before its vote.
	if err := c.contacts.sameServerErr(); err != nil {
		if granted {
			c.undo(acq, keys, value)
		}
		return nil, core.Failure{Why: err, Final: true}
	}
	if !granted {
		why, final := c.refusal(acq)
		return nil, core.Failure{Why: why, Final: final, Nodes: acq.failures()}
	}
	if c.opts.broken.lateStart() {
		start = time.Now()
	}
	// 3. With fencing, the token goes to a quorum before the lock counts.
	var token uint64
	var failure core.Failure
	if c.opts.fencing {
		token, failure.Nodes, failure.Why = c.fence(acq, keys.first, value.arg)
	}
	// 4. Held if the validity window is still open.
	if exp := core.Validity(start, ttl, drift); failure.Why == nil && time.Now().Before(exp) {
		acq.stop()
		return &Lock{c: c, keys: keys, value: value, exp: exp, token: token, since: start}, core.Failure{}
	}
	if failure.Why == nil {
		failure.Why = lockerr.ErrNoValidity
	}
	// 5. Otherwise release it on every master it may have reached.
	c.undo(acq, keys, value)
	if failure.Nodes == nil {
		failure.Nodes = acq.failures()
	}
	return nil, failure
}

// refusal says why an acquisition that no quorum granted failed, once
// every master has answered (or been given up on), when it was not only
// that the key is held elsewhere: too many masters failed otherwise for a
// quorum to grant even a free key (ErrNoQuorum), and, final, too many of
// them refuse this client's credentials or TLS, which retrying cannot mend
// (then the why says which, as the Cause of the Lock's error).
func (c *Client) refusal(acq *fanout) (why error, final bool) {
	down, misconfigured := 0, 0
	var refused []error
	for _, err := range acq.answers {
		if err == nil || err == lockerr.ErrTaken || err == errSkipped {
			continue
		}
		down++
		for _, kind := range []error{lockerr.ErrAuth, lockerr.ErrTLS} {
			if errors.Is(err, kind) {
				misconfigured++
				if !slices.Contains(refused, kind) {
					refused = append(refused, kind)
				}
				break
			}
		}
	}
	spare := len(acq.answers) - c.quorum
	switch {
	case down <= spare:
		return nil, false
	case misconfigured > spare:
		return &refusedConfig{refused}, true
	}
	return lockerr.ErrNoQuorum, false
}

// refusedConfig is why a Lock failed at once: too many masters refuse
// this client's configuration (its credentials, ErrAuth, or its TLS,
// ErrTLS) for a quorum to be reached. It matches ErrNoQuorum and those.
type refusedConfig struct{ kinds []error }

func (r *refusedConfig) Error() string {
	return "too few masters accept this client's configuration (credentials or TLS)"
}

func (r *refusedConfig) Unwrap() []error { return append([]error{lockerr.ErrNoQuorum}, r.kinds...) }

// undo releases a failed attempt: it deletes the key on every master that
// may hold this value, that is all but those that answered "taken", those
// that have not answered yet included. Each delete goes over the same
// connection as its SET, after it, so it cannot overtake it; or, should
// that connection fail before the delete went out, over the next one,
// where it may run before a SET the failed one still held. It then waits
// for the SET answers still pending (so that the error names every
// master's) and for the deletes on the masters that answered, each bounded
// by the node timeout, so that nothing is left behind when the next
// attempt or the error comes. Deletes to masters that did not answer are
// not awaited: they land after their SET, if ever.
func (c *Client) undo(acq *fanout, keys keySet, value lockValue) {
	rel := c.send(context.Background(), c.releaseOf(keys, value), acq)
	rel.flush()
	acq.wait()
	acq.stop()
	for i, err := range acq.answers {
		if errors.Is(err, lockerr.ErrUnreachable) {
			rel.record(i, errSkipped)
		}
	}
	rel.wait()
	rel.stop()
}
