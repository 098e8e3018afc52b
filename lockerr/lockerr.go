// Package lockerr declares the errors of the lock library: the sentinels
// that callers branch on with errors.Is, and the two types that carry the
// detail, Error (one failed Lock, Extend or Unlock) and NodeError (what one
// master answered). Both backends, redlock and memlock, return these same
// values, and the root package lock re-exports them (lock.ErrNotHeld is
// lockerr.ErrNotHeld), so code written against either backend matches
// either.
package lockerr

import (
	"errors"
	"fmt"
	"strings"
)

// The sentinel errors. Every backend returns these same values, so
// errors.Is matches whichever backend produced the error.
var (
	// ErrNotAcquired means Lock gave up: the key was held elsewhere on too
	// many masters, too few masters answered, the validity window closed
	// before a quorum answered, or the context ended.
	ErrNotAcquired = errors.New("lock: not acquired")

	// ErrNotHeld means Extend or Unlock found that the lock has expired or is
	// no longer ours on a quorum of masters.
	ErrNotHeld = errors.New("lock: not held")

	// ErrNoQuorum means Extend or Unlock could not learn the outcome from a
	// quorum: too few masters answered (down, too slow) or the context
	// ended first. The lock is not known to be lost: after a failed Extend
	// it keeps its old Expiration, and after a failed Unlock what is left of
	// it expires with its ttl. A failed Lock's Cause matches it when too
	// many masters failed otherwise than "taken" for a quorum to grant even
	// a free key: masters down, not a key held elsewhere.
	ErrNoQuorum = errors.New("lock: too few masters answered")

	// ErrDestroyed is returned by every call made after Destroy, and by calls
	// that Destroy interrupted.
	ErrDestroyed = errors.New("lock: destroyed")

	// ErrInvalidArgument is wrapped by errors for bad input (empty key, a ttl
	// that is not positive or not larger than the drift allowance). Such
	// calls fail before any I/O.
	ErrInvalidArgument = errors.New("lock: invalid argument")

	// ErrTaken is the per-node reason for a master that holds the key under
	// another value.
	ErrTaken = errors.New("held by another owner")

	// ErrUnreachable is wrapped by per-node errors for masters that did not
	// answer in time or whose connection failed; it tells "down" apart from
	// "held by another" and from a server error reply.
	ErrUnreachable = errors.New("unreachable")

	// ErrAuth is wrapped by the per-node error of a master that refused
	// what this client sends it while connecting: its credentials
	// (WRONGPASS, NOAUTH, a password the master does not expect) or its
	// database (SELECT out of range, or denied: NOPERM); or that answered a
	// request NOAUTH. It is a configuration error: a Lock that cannot reach
	// a quorum for such reasons fails at once, without its retries. A
	// NOPERM in answer to a lock's own command (an ACL that lacks one of
	// the commands the library needs) is not ErrAuth but the server's
	// reply, carried as it is.
	ErrAuth = errors.New("connection refused by the master's settings (credentials, database)")

	// ErrTLS is wrapped by the per-node error of a master with which no TLS
	// connection could be made: its certificate is not trusted or does not
	// name it, or it refused or required a client certificate. It is a
	// configuration error, like ErrAuth.
	ErrTLS = errors.New("TLS failed")

	// ErrReadOnly is wrapped by the per-node error of a master that answered
	// READONLY: it is a read-only replica, such as the demoted master that
	// an endpoint still leads to for a while after a failover. Its vote does
	// not count.
	ErrReadOnly = errors.New("read-only replica")

	// ErrEvictable is wrapped by the per-node error of a master whose
	// maxmemory-policy can evict lock keys, when the options require that
	// none can (requireNoEviction): its vote does not count.
	ErrEvictable = errors.New("can evict lock keys")

	// ErrNotReplicated is wrapped by the per-node error of a master that
	// granted a lock (or an extension) that fewer replicas acknowledged, in
	// time, than the options require (replicaAcks): its vote does not
	// count.
	ErrNotReplicated = errors.New("not acknowledged by enough replicas")

	// ErrSameServer is the Cause of every Lock of a Client two of whose
	// masters are the same server (the same run_id: one server listed
	// twice, under another database or another address): Redlock counts on
	// independent masters, so such a configuration is refused.
	ErrSameServer = errors.New("two masters are the same server")

	// ErrRejoining is wrapped by the per-node error of a master that lost its
	// data (restarted without persistence, or flushed) less than the restart
	// delay ago: its vote for a new lock does not count yet, since a lock it
	// granted before may still be live on other masters.
	ErrRejoining = errors.New("rejoining")

	// ErrLost is returned by Do when the lock could no longer be trusted
	// while the function ran: an Extend found it gone (ErrNotHeld), or its
	// validity was about to end before an Extend succeeded. The function's
	// context was cancelled with it as the cause.
	ErrLost = errors.New("lock: lost while held")

	// ErrNoValidity is the Cause of a failed Lock whose last attempt reached
	// a quorum too late: the validity window had closed by the time the
	// masters answered (a slow master or a process pause), so the attempt
	// was released.
	ErrNoValidity = errors.New("validity window closed before a quorum answered")

	// ErrNotHeldHere is the per-node reason for a master on which Extend or
	// Unlock found the key gone or holding another value. It does not match
	// ErrNotHeld: an Error reaches its masters' errors through Unwrap, and
	// an Extend that failed with ErrNoQuorum while one master no longer
	// held the key must not read as a lost lock. Whether the lock is lost
	// is the call's Err.
	ErrNotHeldHere = errors.New("not held here")

	// ErrExpired is the Cause of an Extend refused without any I/O because
	// the lock's Expiration had passed.
	ErrExpired = errors.New("validity window has passed")
)

// NodeError is what one master did wrong in one operation.
type NodeError struct {
	Node int    // index of the master in the configured list
	Addr string // the master's address, for humans
	Err  error  // ErrTaken, ErrNotHeldHere, an error wrapping ErrUnreachable, the context's error, or the server's error reply
}

// Error says which master answered what: "node 1 (10.0.0.2:6379): ...".
func (e *NodeError) Error() string {
	return fmt.Sprintf("node %d (%s): %v", e.Node, e.Addr, e.Err)
}

// Unwrap returns the master's error, so that errors.Is matches it.
func (e *NodeError) Unwrap() error { return e.Err }

// Error describes a failed Lock, Extend or Unlock. errors.Is matches Err
// (ErrNotAcquired or ErrNotHeld), Cause (such as context.Canceled or
// ErrDestroyed) and every node error; errors.As reaches the *NodeError values.
type Error struct {
	Op       string       // "lock", "extend" or "unlock"
	Key      string       // the key as stored
	Attempts int          // attempts made; 1 for extend and unlock
	Err      error        // ErrNotAcquired, ErrNotHeld, ErrNoQuorum or ErrDestroyed
	Cause    error        // what ended it early (the context's error, with its cause; ErrDestroyed), and why the last attempt failed when no single master is to blame (ErrNoQuorum, ErrNoValidity, ErrSameServer...); or nil
	Nodes    []*NodeError // the failures of the last attempt, in node order
}

// Error says what failed, how often, why, and what each master answered,
// on one line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lock: %s %q: %s", e.Op, e.Key, strings.TrimPrefix(e.Err.Error(), "lock: "))
	if e.Err == ErrNotAcquired {
		fmt.Fprintf(&b, " after %d attempt", e.Attempts)
		if e.Attempts != 1 {
			b.WriteByte('s')
		}
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Cause.Error(), "lock: "))
	}
	for i, n := range e.Nodes {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(n.Error())
	}
	return b.String()
}

// Unwrap returns Err, Cause and every master's error, so that errors.Is
// and errors.As reach each of them.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, len(e.Nodes)+2)
	errs = append(errs, e.Err)
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	for _, n := range e.Nodes {
		errs = append(errs, n)
	}
	return errs
}
