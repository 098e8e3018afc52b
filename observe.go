package lock

import (
	"context"
	"errors"
	"log/slog"

	"github.com/leverege/lock/observe"
)

// Observer is told what a Locker does; see Options.Observer,
// redlock.WithObserver and memlock.WithObserver. Observe must be quick and
// must not block; it is called from many goroutines at once. Declared in
// package observe, with [observe.Event]'s fields.
type Observer = observe.Observer

// Event is one thing an Observer is told: its Kind says which, and which
// fields are set. See [observe.Event] for its fields.
type Event = observe.Event

// Kind says what an Event reports.
type Kind = observe.Kind

// The kinds of Event.
const (
	KindLock    = observe.KindLock    // a Lock call ended: Err, Took (the wait), Attempts
	KindAttempt = observe.KindAttempt // one attempt of a Lock call ended: Err, Took
	KindExtend  = observe.KindExtend  // an Extend call ended: Err, Took
	KindUnlock  = observe.KindUnlock  // an Unlock call ended: Err, Took, Held
	KindNode    = observe.KindNode    // one master's answer: Node, Addr, Op, Took, Err
	KindMaster  = observe.KindMaster  // trouble a master told of when a connection to it opened: Node, Addr, Err
)

// ObserverFunc is an Observer made of a function.
type ObserverFunc = observe.Func

// SlogObserver logs every event to l: failed Locks, Extends and Unlocks,
// masters that failed to answer, answered with an error or are rejoining,
// and trouble a master told of (KindMaster: the same server listed twice,
// a policy that can evict lock keys), at Warn; the rest at Debug (so that
// a logger at Info logs only trouble: an owner's "taken" or "not held
// here" is not trouble).
func SlogObserver(l *slog.Logger) Observer {
	return ObserverFunc(func(e Event) {
		level := slog.LevelDebug
		switch e.Kind {
		case KindLock, KindExtend, KindUnlock:
			if e.Err != nil {
				level = slog.LevelWarn
			}
		case KindNode:
			if e.Err != nil && !errors.Is(e.Err, ErrTaken) && !errors.Is(e.Err, ErrNotHeldHere) {
				level = slog.LevelWarn
			}
		case KindMaster:
			level = slog.LevelWarn
		}
		// Nothing is built for a record the logger would drop (at Info,
		// every answer of every master on every call).
		if !l.Enabled(context.Background(), level) {
			return
		}
		attrs := []slog.Attr{slog.String("kind", e.Kind.String()), slog.Duration("took", e.Took)}
		if e.Key != "" {
			attrs = append(attrs, slog.String("key", e.Key))
		}
		switch e.Kind {
		case KindLock:
			attrs = append(attrs, slog.Int("attempts", e.Attempts))
		case KindUnlock:
			attrs = append(attrs, slog.Duration("held", e.Held))
		case KindNode:
			attrs = append(attrs, slog.Int("node", e.Node), slog.String("addr", e.Addr), slog.String("op", e.Op))
		case KindMaster:
			attrs = append(attrs, slog.Int("node", e.Node), slog.String("addr", e.Addr))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		l.LogAttrs(context.Background(), level, "lock "+e.Kind.String(), attrs...)
	})
}
