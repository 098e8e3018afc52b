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
// Transport: each master has one connection, borrowed from its pool and
// kept, over which the requests of every goroutine are pipelined: the caller
// that finds it idle writes all that is queued in one batch, and one reader
// matches the replies in order. A release or extend therefore follows its
// SET on the same connection and cannot overtake it.
//
// Waiting: callers of one Client that wait for the same key queue first
// come, first served; only the first retries when the lock is released.
// Unlock announces a release on the pub/sub channel ReleasedChannel+key
// through one master, and a Client with waiters subscribes to it on every
// master; when the Client itself has a waiter, Unlock may hand the lock to
// it instead (its SET right behind the deletes), a streak at a time, so
// that other processes get their turns. A retry delay that passes while a
// caller waits behind others counts as one of its attempts without a
// request, but for its last. The timed retries remain, so announcements
// only ever save time. See docs/algorithm.md.
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
	"sync"
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
	nodes   []node
	quorum  int
	opts    options
	life    core.Life
	readers sync.WaitGroup // the links' and watchers' goroutines
	// line queues this process's waiters per key; a release, announced by
	// this Client's Unlock or by the masters, wakes the first.
	line     core.Waiters
	watchers []*watcher
	// announcements are published by a goroutine of their own, so that
	// Unlock's caller does not pay for the write.
	announcements chan announcement
	announcer     sync.Once
	announcing    sync.WaitGroup
	quit          chan struct{}
}

type announcement struct {
	node       int
	key, value string
}

// announce has the release of key holding value published through master
// i, in the background. Should the queue be full, the announcement is
// dropped: waiters still have their timed retries.
func (c *Client) announce(i int, key, value string) {
	c.announcer.Do(func() {
		c.announcing.Add(1)
		go func() {
			defer c.announcing.Done()
			for {
				select {
				case a := <-c.announcements:
					c.nodes[a.node].announce(a.key, a.value)
				case <-c.quit:
					for {
						select {
						case a := <-c.announcements:
							c.nodes[a.node].announce(a.key, a.value)
						default:
							return
						}
					}
				}
			}
		}()
	})
	select {
	case c.announcements <- announcement{i, key, value}:
	default:
	}
}

// New returns a Client over the given masters, one pool each, which must be
// independent servers (not replicas of each other). The Client takes over the
// pools: Destroy closes them. It borrows one connection from each pool and
// keeps it, pipelining every request to that master over it (see the
// package's doc); a connection that breaks goes back to its pool, which
// dials the next. The pools should dial with DialContext and set read and
// write timeouts: a dial that ignores its context is abandoned after the
// node timeout but keeps a goroutine and a socket until it returns (no
// other dial to that master starts meanwhile), and a connection
// wrapper that hides redigo's per-read deadline (redis.ConnWithTimeout) is
// read with its own read timeout only.
func New(pools []*redis.Pool, opts ...Option) (*Client, error) {
	if len(pools) == 0 {
		return nil, core.Invalid("pools", "at least one master is needed")
	}
	o, err := buildOptions(len(pools), opts)
	if err != nil {
		return nil, err
	}
	c := &Client{nodes: make([]node, len(pools)), quorum: len(pools)/2 + 1, opts: o,
		announcements: make(chan announcement, 256), quit: make(chan struct{})}
	if o.variant.HalfQuorum {
		c.quorum = max(len(pools)/2, 1)
	}
	for i, p := range pools {
		if p == nil {
			return nil, core.Invalid("pools", "pool %d is nil", i)
		}
		c.nodes[i] = node{pool: p, link: newLink(p, o.nodeTimeout, &c.readers), name: o.names[i], plainDel: o.variant.PlainDel}
		c.watchers = append(c.watchers, newWatcher(c, p))
	}
	c.line.Linger = linger
	c.line.Watch = func(key string) {
		for _, w := range c.watchers {
			w.watch(key)
		}
	}
	c.line.Unwatch = func(key string) {
		for _, w := range c.watchers {
			w.unwatch(key)
		}
	}
	return c, nil
}

// boxed returns keys as request arguments, or nil for fewer than two.
func boxed(keys []string) []any {
	if len(keys) < 2 {
		return nil
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

// linger keeps the subscription to a key's releases that long after the
// last caller of this process stopped waiting for it.
const linger = 2 * time.Second

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
	return c.lock(ctx, key, nil, ttl)
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
	return c.lock(ctx, first, set, ttl)
}

// LockAllNs is LockAll on "<namespace>:<key>" for every key.
func (c *Client) LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (*Lock, error) {
	ns, err := core.NamespacedAll(c.opts.namespace, keys)
	if err != nil {
		return nil, err
	}
	return c.LockAll(ctx, ns, ttl)
}

// lock is Lock, on keys when there are several (key is keys[0]).
func (c *Client) lock(ctx context.Context, key string, keys []string, ttl time.Duration) (*Lock, error) {
	if err := c.opts.checkTTL(ttl); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	if err := c.life.Enter(); err != nil {
		return nil, &core.Error{Op: "lock", Key: key, Err: err}
	}
	defer c.life.Exit()
	line := &c.line
	if keys != nil {
		line = nil // a line is per key; a set of keys retries on its schedule
	}
	many := boxed(keys) // once for every attempt
	return core.RunObserved(ctx, c.life.Done(), c.opts.retry, key,
		func(context.Context) core.Attempt[*Lock] { return c.attempt(key, keys, many, ttl, drift) },
		func(l *Lock) { p, _ := l.release(); p.wait(); p.stop() }, line, c.opts.observer)
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
func (c *Client) attempt(key string, keys []string, many []any, ttl, drift time.Duration) core.Attempt[*Lock] {
	value := rand.Text()
	start := time.Now()
	// The requests are not cut short when the caller's context ends: each is
	// bounded by the node timeout anyway, and a SET still in flight when the
	// outcome is decided must land (or fail) on its own, so that the lock is
	// held, or released, on every master that can.
	k, v, ms, fence := any(key), any(value), any(ttl.Milliseconds()), c.opts.fencing
	var fk, rd any
	if fence {
		fk = FenceKeyPrefix + key
	}
	if d := c.opts.restartDelay.Milliseconds(); d > 0 {
		rd = d
	}
	p := c.ask(context.Background(), "acquire", nil, func(cl *call) {
		c.nodes[cl.node].acquire(cl, k, many, v, fk, ms, rd, fence)
	})
	// The validity is measured after the answers, from before the requests.
	var why error
	var nodes []*core.NodeError
	if p.decide() {
		if c.opts.variant.LateStart {
			start = time.Now()
		}
		var token uint64
		ok := true
		if fence {
			token, nodes, ok = c.fence(p, k, fk, v)
		}
		if exp := start.Add(ttl - drift); ok && time.Now().Before(exp) {
			p.stop()
			return core.Attempt[*Lock]{OK: true, Lock: &Lock{c: c, key: key, keys: keys, many: many, value: value, exp: exp, token: token, since: start}}
		}
		why = core.ErrNoValidity
		if !ok {
			why = errNotFenced
		}
	}
	c.releaseAfter(p, k, many, v)
	if nodes == nil {
		nodes = p.failures(c)
	}
	return core.Attempt[*Lock]{Nodes: nodes, Why: why}
}

// errNotFenced is why an attempt that a quorum granted failed all the same:
// its fencing token could not be written back to a quorum (the masters'
// answers to that write are the attempt's node errors).
var errNotFenced = errors.New("fencing token not written to a quorum")

// fence gives out the token of an acquisition that a quorum granted: one
// more than the largest counter the granting masters read along with their
// SET, written back to a quorum while the key still holds value there.
// False (with the masters' answers) when no quorum took it: the attempt
// then fails, and no token is given out.
func (c *Client) fence(p *poll, key, fenceKey, value any) (uint64, []*core.NodeError, bool) {
	token := p.maxYes() // 1 + the largest counter
	r := c.ask(context.Background(), "fence", func(i int) bool { return p.errs[i] == core.ErrTaken },
		func(cl *call) { c.nodes[cl.node].raise(cl, key, fenceKey, value, token) })
	defer r.stop()
	if r.decide() {
		return uint64(token), nil, true
	}
	return 0, r.failures(c), false
}

// releaseAfter undoes a failed attempt: it deletes the key on every master
// that may hold this value, that is all but those that answered "taken",
// those that have not answered yet included. Each delete goes over the same
// connection as its SET, after it, so it cannot overtake it. It then waits
// for the SET answers still pending (so that the error names every
// master's) and for the deletes on the masters that answered, each bounded
// by the node timeout, so that nothing is left behind when the next attempt
// or the error comes. Deletes to masters that did not answer are not
// awaited: they land after their SET, if ever.
func (c *Client) releaseAfter(p *poll, key any, many []any, value any) {
	r := c.ask(context.Background(), "release", func(i int) bool { return p.errs[i] == core.ErrTaken },
		func(cl *call) { c.nodes[cl.node].release(cl, key, many, value) })
	p.wait()
	p.stop()
	for i, err := range p.errs {
		if errors.Is(err, core.ErrUnreachable) {
			r.record(i, errSkipped)
		}
	}
	r.wait()
	r.stop()
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
	c.line.Stop()
	close(c.quit) // the announcer sends what is queued, then the links close
	c.announcer.Do(func() {})
	c.announcing.Wait()
	for i := range c.nodes {
		c.watchers[i].close()
		c.nodes[i].link.close()
	}
	c.readers.Wait()
	var first error
	for i := range c.nodes {
		if err := c.nodes[i].pool.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
