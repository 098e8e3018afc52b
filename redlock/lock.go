package redlock

import (
	"context"
	"time"

	"github.com/leverege/lock/internal/core"
)

// Lock is one acquisition. It is immutable and safe for concurrent use.
type Lock struct {
	c     *Client
	key   string
	value string
	exp   time.Time
	// acquired is closed once every master has answered the acquiring SET.
	// Lock returns as soon as a quorum has; Extend and Unlock wait for the
	// rest (at most a node timeout) so that they cannot overtake a SET still
	// on its way and leave a key behind.
	acquired <-chan struct{}
}

// Key is the key as stored.
func (l *Lock) Key() string { return l.key }

// Value is the random value this acquisition stored.
func (l *Lock) Value() string { return l.value }

// Expiration is the end of the validity window, with a monotonic reading.
func (l *Lock) Expiration() time.Time { return l.exp }

// Extend resets the key's ttl on every master that still holds this value
// and returns the lock with its new validity, measured from the start of the
// extension. It fails with ErrNotHeld, without any I/O, once Expiration has
// passed, and with ErrNotHeld and per-node detail when fewer than a quorum
// renewed it or the new window closed before they answered. A failed Extend
// never deletes the key: the lock keeps its old Expiration (the masters that
// did renew it keep the key until the new ttl runs out).
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	c := l.c
	ttl = ttl.Truncate(time.Millisecond)
	drift := c.opts.drift(ttl)
	if err := core.CheckTTL(ttl, drift); err != nil {
		return nil, err
	}
	start := time.Now()
	if !start.Before(l.exp) {
		return nil, &core.Error{Op: "extend", Key: l.key, Attempts: 1, Err: core.ErrNotHeld, Cause: core.ErrExpired}
	}
	ctx, done, err := c.life.Begin(ctx)
	if err != nil {
		return nil, &core.Error{Op: "extend", Key: l.key, Err: err}
	}
	defer done()
	<-l.acquired
	p := c.ask(ctx, func(ctx context.Context, n *node) error { return n.extend(ctx, l.key, l.value, ttl) })
	var why error
	if p.decide() {
		if exp := start.Add(ttl - drift); time.Now().Before(exp) {
			return &Lock{c: c, key: l.key, value: l.value, exp: exp, acquired: l.acquired}, nil
		}
		why = core.ErrNoValidity
	}
	return nil, &core.Error{Op: "extend", Key: l.key, Attempts: 1, Err: core.ErrNotHeld, Cause: why, Nodes: p.failures(c)}
}

// Unlock deletes the key on every master where it still holds this value,
// and nowhere else, and waits for every master's answer (each bounded by the
// node timeout) so that nothing of the lock is left when it returns. The
// deletes run even when ctx has already ended, so that a cancelled caller
// leaves nothing behind. It returns nil when a quorum deleted it, and
// ErrNotHeld with per-node detail when fewer did (the lock had expired or
// was taken over).
func (l *Lock) Unlock(ctx context.Context) error {
	c := l.c
	exit, err := c.life.Enter()
	if err != nil {
		return &core.Error{Op: "unlock", Key: l.key, Err: err}
	}
	defer exit()
	<-l.acquired
	p := c.ask(context.WithoutCancel(ctx), func(ctx context.Context, n *node) error { return n.release(ctx, l.key, l.value) })
	for p.pending() > 0 {
		p.next()
	}
	if p.yes >= c.quorum {
		return nil
	}
	return &core.Error{Op: "unlock", Key: l.key, Attempts: 1, Err: core.ErrNotHeld, Nodes: p.failures(c)}
}
