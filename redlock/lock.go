package redlock

import (
	"context"
	"slices"
	"time"

	"github.com/leverege/lock/internal/core"
)

// Lock is one acquisition. It is immutable and safe for concurrent use.
type Lock struct {
	c     *Client
	key   string
	value string
	exp   time.Time
	token uint64
	since time.Time // the acquisition's start, for the observer's hold time
	// keys and many (the same, as request arguments) are the keys of a lock
	// on several keys (LockAll); nil for one key.
	keys []string
	many []any
}

// Keys is the lock's keys: Key alone, or all that LockAll locked.
func (l *Lock) Keys() []string {
	if l.keys == nil {
		return []string{l.key}
	}
	return slices.Clone(l.keys)
}

// Key is the key as stored.
func (l *Lock) Key() string { return l.key }

// Value is the random value this acquisition stored.
func (l *Lock) Value() string { return l.value }

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
	return core.Observed(l.c.opts.observer, core.KindExtend, l.key, l.since,
		func() (*Lock, error) { return l.extend(ctx, ttl) })
}

func (l *Lock) extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	c := l.c
	if err := c.opts.checkTTL(ttl); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	start := time.Now()
	fail := func(err, cause error, nodes []*core.NodeError) (*Lock, error) {
		return nil, &core.Error{Op: "extend", Key: l.key, Attempts: 1, Err: err, Cause: cause, Nodes: nodes}
	}
	if !start.Before(l.exp) {
		return fail(core.ErrNotHeld, core.ErrExpired, nil)
	}
	// One round, bounded by the node timeout: Destroy waits for it rather
	// than interrupting it.
	if err := c.life.Enter(); err != nil {
		return nil, &core.Error{Op: "extend", Key: l.key, Err: err}
	}
	defer c.life.Exit()
	if err := core.CtxErr(ctx); err != nil {
		return fail(core.ErrNoQuorum, err, nil)
	}
	k, v, ms := any(l.key), any(l.value), any(ttl.Milliseconds())
	p := c.ask(ctx, "extend", nil, func(cl *call) { c.nodes[cl.node].extend(cl, k, l.many, v, ms) })
	defer p.stop()
	if p.decide() {
		if exp := start.Add(ttl - drift); time.Now().Before(exp) {
			n := *l
			n.exp = exp
			return &n, nil
		}
		return fail(core.ErrNoQuorum, core.ErrNoValidity, p.failures(c))
	}
	p.wait()
	if p.lost() {
		return fail(core.ErrNotHeld, nil, p.failures(c))
	}
	return fail(core.ErrNoQuorum, core.CtxErr(ctx), p.failures(c))
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
	_, err := core.Observed(l.c.opts.observer, core.KindUnlock, l.key, l.since,
		func() (struct{}, error) { return struct{}{}, l.unlock() })
	return err
}

func (l *Lock) unlock() error {
	if err := l.c.life.Enter(); err != nil {
		return &core.Error{Op: "unlock", Key: l.key, Err: err}
	}
	defer l.c.life.Exit()
	start := time.Now()
	p, handed := l.release()
	defer p.stop()
	if p.decide() {
		if !handed {
			// Announced once a quorum has deleted it, so that the waiters
			// it wakes find a quorum free, by a master that did. This
			// process's waiters, who had a streak, give the others a head
			// start of two of these round trips.
			d := 2 * time.Since(start)
			for key := range core.Each(l.key, l.keys) {
				if !l.c.opts.variant.Silent {
					l.c.announce(p.firstYes(), key, l.value)
				}
				l.c.line.Yield(key, l.value, d)
			}
		}
		return nil
	}
	p.wait()
	if p.lost() {
		for key := range core.Each(l.key, l.keys) {
			l.c.line.Released(key, l.value)
		}
		return &core.Error{Op: "unlock", Key: l.key, Attempts: 1, Err: core.ErrNotHeld, Nodes: p.failures(l.c)}
	}
	return &core.Error{Op: "unlock", Key: l.key, Attempts: 1, Err: core.ErrNoQuorum, Nodes: p.failures(l.c)}
}

// release sends the delete to every master; the caller's context does not
// cut it short. Each goes over the connection that carried the acquiring
// SET, after it, so it cannot overtake a SET still on its way.
//
// When this process has a caller waiting for the key and its turn has come
// (core.Waiters.HandOver), that caller is woken as soon as the deletes are
// queued, so that its SET travels right behind them, in the same writes,
// and Unlock does not announce the release to other processes; otherwise
// Unlock announces it and every process's first waiter races for the lock.
func (l *Lock) release() (_ *poll, handed bool) {
	c, k, v := l.c, any(l.key), any(l.value)
	var queued func()
	if l.many == nil && c.line.HandOver(l.key) {
		handed = true
		queued = func() { c.line.Released(l.key, l.value) }
	}
	return c.askThen(context.Background(), "release", nil, func(cl *call) { c.nodes[cl.node].release(cl, k, l.many, v) }, queued), handed
}
