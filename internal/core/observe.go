package core

import (
	"context"
	"time"
)

// Kind says what an Event reports.
type Kind int

const (
	// KindLock: a Lock call ended, acquired (Err nil) or not. Took is the
	// wait, from the call to its result; Attempts how many it made.
	KindLock Kind = iota + 1
	// KindAttempt: one attempt of a Lock call ended (Err nil when it won).
	KindAttempt
	// KindExtend: an Extend call ended. Took is its duration.
	KindExtend
	// KindUnlock: an Unlock call ended. Held is how long the lock was held,
	// from its acquisition.
	KindUnlock
	// KindNode: one master answered a request, or was given up on. Node and
	// Addr name it, Op is the request ("acquire", "release", "extend",
	// "fence"), Took its latency, and Err nil for yes, ErrTaken or
	// NotHeldHere for an owner's no, ErrUnreachable, ErrRejoining (the
	// master restarted or lost its data less than the restart delay ago)
	// or the server's error.
	KindNode
)

func (k Kind) String() string {
	switch k {
	case KindLock:
		return "lock"
	case KindAttempt:
		return "attempt"
	case KindExtend:
		return "extend"
	case KindUnlock:
		return "unlock"
	case KindNode:
		return "node"
	}
	return "unknown"
}

// Event is one thing an Observer is told.
type Event struct {
	Kind     Kind
	Key      string
	Err      error
	Took     time.Duration
	Held     time.Duration // KindUnlock
	Attempts int           // KindLock
	Node     int           // KindNode
	Addr     string        // KindNode
	Op       string        // KindNode
}

// Observer is told what a Locker does. Observe is called synchronously on
// the caller's goroutine (and, for KindNode, while the caller waits for the
// masters), so it must be quick and must not block; it may be called from
// many goroutines at once. With no Observer set, nothing is built or
// called.
type Observer interface {
	Observe(Event)
}

// RunObserved is Run that tells obs of every attempt (with the attempt's
// own detail when it failed) and of the outcome; with obs nil it is Run.
func RunObserved[L any](ctx context.Context, stop <-chan struct{}, r Retry, key string, try func(context.Context) Attempt[L], undo func(L), w *Waiters, obs Observer) (L, error) {
	if obs == nil {
		return Run(ctx, stop, r, key, try, undo, w)
	}
	began, attempts := time.Now(), 0
	l, err := Run(ctx, stop, r, key, func(ctx context.Context) Attempt[L] {
		attempts++
		at := time.Now()
		a := try(ctx)
		var aerr error
		if !a.OK { // the attempt's own detail; the Lock's error says the rest
			aerr = &Error{Op: "lock", Key: key, Attempts: 1, Err: ErrNotAcquired, Cause: a.Why, Nodes: a.Nodes}
		}
		obs.Observe(Event{Kind: KindAttempt, Key: key, Err: aerr, Took: time.Since(at)})
		return a
	}, undo, w)
	obs.Observe(Event{Kind: KindLock, Key: key, Err: err, Took: time.Since(began), Attempts: attempts})
	return l, err
}

// Observed runs f, an Extend (kind KindExtend) or an Unlock (KindUnlock,
// held since acquired), and tells obs of it; with obs nil it only runs f.
func Observed[T any](obs Observer, kind Kind, key string, acquired time.Time, f func() (T, error)) (T, error) {
	if obs == nil {
		return f()
	}
	at := time.Now()
	v, err := f()
	e := Event{Kind: kind, Key: key, Err: err, Took: time.Since(at)}
	if kind == KindUnlock {
		e.Held = at.Sub(acquired)
	}
	obs.Observe(e)
	return v, err
}
