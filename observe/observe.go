// Package observe declares what a Locker tells an Observer: one Event per
// Lock call, attempt, Extend and Unlock, per master's answer, and per
// trouble a master told of when a connection to it opened. Set an Observer
// with lock.Options.Observer, redlock.WithObserver or
// memlock.WithObserver; unset, it costs nothing. lock.SlogObserver logs
// events, and github.com/leverege/lock/prom turns them into metrics. The
// root package lock re-exports these names.
package observe

import "time"

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
	// ErrNotHeldHere for an owner's no, ErrUnreachable, ErrRejoining (the
	// master restarted, lost its data or was promoted less than the restart
	// delay ago), ErrAuth, ErrTLS, ErrReadOnly (a replica),
	// ErrNotReplicated (replica acknowledgements), ErrEvictable
	// (requireNoEviction), or the server's error (in package lockerr).
	KindNode
	// KindMaster: what a master told about itself when a connection to it
	// opened (or an answer showed), when that is trouble: Node and Addr
	// name it, and Err says what: ErrSameServer (two masters are one
	// server), ErrEvictable (its policy can evict lock keys), ErrReadOnly
	// (it is a replica), or that it refused INFO (none of this is checked).
	KindMaster
)

// String is the kind's name: "lock", "attempt", "extend", "unlock", "node"
// or "master".
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
	case KindMaster:
		return "master"
	}
	return "unknown"
}

// Event is one thing an Observer is told.
type Event struct {
	Kind     Kind          // what the event reports
	Key      string        // the key as stored (namespace included); "" for KindMaster
	Err      error         // nil for success (acquired, extended, unlocked, a master's yes)
	Took     time.Duration // how long the call, attempt or master's answer took
	Held     time.Duration // KindUnlock
	Attempts int           // KindLock
	Node     int           // KindNode, KindMaster
	Addr     string        // KindNode, KindMaster
	Op       string        // KindNode
}

// Observer is told what a Locker does. Observe is called synchronously on
// the caller's goroutine (for KindNode, while the caller waits for the
// masters; for KindMaster, on a connection's reader), so it must be quick
// and must not block; it may be called from
// many goroutines at once. With no Observer set, nothing is built or
// called.
type Observer interface {
	// Observe is told one event.
	Observe(Event)
}

// Func is an Observer made of a function.
type Func func(Event)

// Observe calls f(e).
func (f Func) Observe(e Event) { f(e) }
