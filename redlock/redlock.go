// Package redlock implements the Redlock algorithm over N independent Redis
// masters, each reached through a redigo pool.
//
// A lock is held when a quorum (N/2+1 of the configured N) of masters
// accepted SET key value NX PX ttl and the validity window
// ttl - elapsed - drift is still open once their answers are in. Every
// command to a master is bounded by the node timeout, so a hung or cut-off
// master costs at most that long. A failed attempt is released on every
// master that may hold it, even when the caller's context has ended, before
// the next attempt or the error.
//
// What it guarantees, and under which assumptions: while the validity window
// ([Lock.Expiration]) is open, no other client holds the key on a quorum,
// provided the masters' clocks advance at about the rate of ours (within the
// drift factor) and a master that restarts does not come back empty while
// locks it granted are live. It cannot stop the holder itself from pausing
// (GC, swap, SIGSTOP) past its validity and acting on a lock it no longer
// has; keep critical sections well inside the validity, or fence the
// resource.
package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
)

// The errors that Client and Lock return; they are the same values as the
// root package's, so errors.Is matches either.
var (
	ErrNotAcquired     = core.ErrNotAcquired
	ErrNotHeld         = core.ErrNotHeld
	ErrNoQuorum        = core.ErrNoQuorum
	ErrDestroyed       = core.ErrDestroyed
	ErrInvalidArgument = core.ErrInvalidArgument
)

// Client hands out locks held on a quorum of Redis masters. It is safe for
// concurrent use.
type Client struct {
	nodes  []node
	quorum int
	opts   options
	life   core.Life
}

// New returns a Client over the given masters, one pool each, which must be
// independent servers (not replicas of each other). The Client takes over the
// pools: Destroy closes them.
func New(pools []*redis.Pool, opts ...Option) (*Client, error) {
	if len(pools) == 0 {
		return nil, core.Invalid("pools", "at least one master is needed")
	}
	o, err := buildOptions(len(pools), opts)
	if err != nil {
		return nil, err
	}
	c := &Client{nodes: make([]node, len(pools)), quorum: len(pools)/2 + 1, opts: o}
	if o.variant.HalfQuorum {
		c.quorum = max(len(pools)/2, 1)
	}
	for i, p := range pools {
		if p == nil {
			return nil, core.Invalid("pools", "pool %d is nil", i)
		}
		c.nodes[i] = node{pool: p, name: o.names[i], timeout: o.nodeTimeout, plainDel: o.variant.PlainDel}
	}
	return c, nil
}

// Quorum is how many masters must agree: N/2+1 of the configured N.
func (c *Client) Quorum() int { return c.quorum }

// Lock acquires key as given for ttl, retrying as the options say. The
// ttl is used in whole milliseconds and must be larger than the drift
// allowance (round(driftFactor*ttl) + 2ms). When ctx ends first the error
// matches both ErrNotAcquired and ctx's error.
func (c *Client) Lock(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	if key == MarkerKey {
		return nil, core.Invalid("key", "%q is reserved for the restart protection", key)
	}
	if err := c.opts.checkTTL(ttl); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	ctx, done, err := c.life.Begin(ctx)
	if err != nil {
		return nil, &core.Error{Op: "lock", Key: key, Err: err}
	}
	defer done()
	return core.Run(ctx, c.opts.retry, key,
		func(ctx context.Context) core.Attempt[*Lock] { return c.attempt(ctx, key, ttl, drift) },
		func(l *Lock) { l.release(ctx).wait() })
}

// LockNs is Lock on "<namespace>:<key>".
func (c *Client) LockNs(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	return c.Lock(ctx, core.Namespaced(c.opts.namespace, key), ttl)
}

// attempt is one round of the algorithm, with a value of its own (128
// random bits) so that nothing a failed round left behind is mistaken for it.
func (c *Client) attempt(ctx context.Context, key string, ttl, drift time.Duration) core.Attempt[*Lock] {
	value := rand.Text()
	start := time.Now()
	// The requests are not cut short when the caller's context ends: each is
	// bounded by the node timeout anyway, and a request still in flight when
	// the outcome is decided must land (or fail) on its own, not be torn
	// down half-sent, so that the lock is held on every master that can.
	p := c.ask(context.WithoutCancel(ctx), func(ctx context.Context, n *node) error { return n.acquire(ctx, key, value, ttl, c.opts.restartDelay) }, nil, true)
	// The validity is measured after the answers, from before the requests.
	var why error
	if p.decide() {
		if c.opts.variant.LateStart {
			start = time.Now()
		}
		if exp := start.Add(ttl - drift); time.Now().Before(exp) {
			return core.Attempt[*Lock]{OK: true, Lock: &Lock{c: c, key: key, value: value, exp: exp, acquired: p.answered}}
		}
		why = core.ErrNoValidity
	}
	c.releaseAfter(context.WithoutCancel(ctx), p, key, value)
	return core.Attempt[*Lock]{Nodes: p.failures(c), Why: why}
}

// releaseAfter undoes a failed attempt: it deletes the key on every master
// that may hold this value, that is all but those that answered "taken". It
// first waits for every master's answer to the SET (each bounded by the node
// timeout), so that no delete overtakes its SET. The deletes run detached
// from ctx, so that a cancelled caller still leaves nothing behind, each
// bounded by the node timeout. It waits for the deletes on the masters that
// answered; those that could not be reached get theirs in the background, so
// that a dead master does not cost every attempt a second node timeout.
func (c *Client) releaseAfter(ctx context.Context, p *poll, key, value string) {
	p.wait()
	done := make(chan struct{}, len(c.nodes))
	waiting := 0
	for i, err := range p.errs {
		n := &c.nodes[i]
		switch {
		case err == core.ErrTaken:
		case errors.Is(err, core.ErrUnreachable):
			c.life.Go(func() { n.release(ctx, key, value) })
		default:
			waiting++
			c.life.Go(func() {
				n.release(ctx, key, value)
				done <- struct{}{}
			})
		}
	}
	for range waiting {
		<-done
	}
}

// Destroy interrupts the calls in flight (they release what they hold of a
// partial acquisition and fail with ErrDestroyed), waits for them, and closes
// the pools. Later calls fail with ErrDestroyed. Locks still held are left to
// expire. Destroy is idempotent and returns the first error from closing a
// pool.
func (c *Client) Destroy() error {
	if !c.life.Destroy() {
		return nil
	}
	var first error
	for i := range c.nodes {
		if err := c.nodes[i].pool.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
