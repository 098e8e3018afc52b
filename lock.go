// Package lock is a distributed lock for Go with the API of the JavaScript
// package @leverege/lock: one factory, [Create], returns a [Locker] driven by
// a configuration (often the LOCK_CONFIG environment variable, see
// [FromEnv]): either a Redis lock that works across processes and machines,
// using the Redlock algorithm over one or more independent masters (package
// redlock), or an in-memory lock inside one process (package memlock).
//
// Both backends keep the same contract and return the same errors, so code
// written against [Locker] and [Lock] runs on either. See package redlock for
// what a Redis lock guarantees and what it does not.
package lock

import (
	"context"
	"time"

	"github.com/leverege/lock/lockerr"
)

// Lock is one acquisition of a key. A Lock is immutable and safe for
// concurrent use; Extend returns a new Lock with the new Expiration, and the
// old value still names the same acquisition (Unlock works on either).
type Lock interface {
	// Key is the key as stored, namespace included; for a lock on several
	// keys (LockAll), the first.
	Key() string
	// Keys is every key of the lock: Key alone, or all that LockAll locked.
	Keys() []string
	// Value is the random value that this acquisition stored; it is unique
	// per acquisition and is what Extend and Unlock compare against.
	Value() string
	// Expiration is the end of the validity window: until then, and only
	// under the clock assumptions of the algorithm, no other owner can hold
	// the key. It carries a monotonic clock reading.
	Expiration() time.Time
	// Token is the acquisition's fencing token when fencing is on (0 when
	// it is off): greater than every token given out before for the same
	// key, by any client of the same masters, as long as the masters keep
	// their data. Pass it to the protected resource, which should refuse a
	// write that carries a smaller token than one it has seen. Extend keeps
	// it.
	Token() uint64
	// Extend resets the key's time to live to ttl on a quorum and returns the
	// lock with its new validity. It never deletes the key. It fails with
	// ErrNotHeld when the lock has expired or is no longer ours, and with
	// ErrNoQuorum when too few masters answered or ctx ended (the lock keeps
	// its old Expiration).
	Extend(ctx context.Context, ttl time.Duration) (Lock, error)
	// Unlock deletes the key wherever it still holds this lock's value and
	// nowhere else, even when ctx has ended. It may return once a quorum has
	// deleted it, with the other deletes still on their way. It fails with ErrNotHeld when
	// fewer than a quorum held it, and with ErrNoQuorum when too few masters
	// answered; what is left expires with its ttl.
	Unlock(ctx context.Context) error
}

// Locker hands out locks. Implementations are safe for concurrent use.
type Locker interface {
	// Lock acquires key as given, retrying according to the options, and
	// returns a Lock valid for at most ttl.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// LockNs is Lock on "<namespace>:<key>".
	LockNs(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// LockAll acquires all of keys, as given, or none, with the same
	// quorum, validity, Extend and Unlock semantics as Lock. keys must not
	// be empty nor hold a key twice (ErrInvalidArgument).
	LockAll(ctx context.Context, keys []string, ttl time.Duration) (Lock, error)
	// LockAllNs is LockAll on "<namespace>:<key>" for every key.
	LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (Lock, error)
	// Destroy interrupts calls in flight (they fail with ErrDestroyed after
	// releasing anything partly acquired), waits for them, and frees the
	// Locker's resources. Later calls fail with ErrDestroyed. Destroy is
	// idempotent; locks still held are left to expire.
	Destroy() error
}

// The errors, declared in package lockerr (where each is documented) and
// re-exported here. Both backends return these same values; match them
// with errors.Is.
var (
	ErrNotAcquired     = lockerr.ErrNotAcquired     // Lock gave up (held elsewhere, no quorum, context ended)
	ErrNotHeld         = lockerr.ErrNotHeld         // Extend or Unlock: expired or no longer ours on a quorum
	ErrNoQuorum        = lockerr.ErrNoQuorum        // too few masters answered (Extend, Unlock: or ctx ended; not known to be lost; Lock: as its Cause)
	ErrDestroyed       = lockerr.ErrDestroyed       // any call after (or interrupted by) Destroy
	ErrInvalidArgument = lockerr.ErrInvalidArgument // empty key, bad ttl: refused before any I/O
	ErrTaken           = lockerr.ErrTaken           // per node: the key holds another owner's value
	ErrUnreachable     = lockerr.ErrUnreachable     // per node: no answer in time, or a broken connection
	ErrRejoining       = lockerr.ErrRejoining       // per node: restarted, lost its data or was promoted less than the restart delay ago; vote not counted
	ErrAuth            = lockerr.ErrAuth            // per node: credentials refused (WRONGPASS, NOAUTH; NOPERM while connecting): a configuration error, not retried
	ErrTLS             = lockerr.ErrTLS             // per node: TLS handshake failed (certificate not trusted, client certificate refused or missing): not retried
	ErrReadOnly        = lockerr.ErrReadOnly        // per node: a read-only replica (READONLY); vote not counted
	ErrNotReplicated   = lockerr.ErrNotReplicated   // per node, with replicaAcks: too few replicas acknowledged its yes in time; vote not counted
	ErrEvictable       = lockerr.ErrEvictable       // per node, with requireNoEviction: its maxmemory-policy can evict lock keys; vote not counted
	ErrSameServer      = lockerr.ErrSameServer      // Cause: two configured masters are one server (same run_id); every Lock fails
	ErrExpired         = lockerr.ErrExpired         // cause of an Extend refused because Expiration had passed
	ErrNoValidity      = lockerr.ErrNoValidity      // cause: a quorum answered only after the validity window closed
	ErrLost            = lockerr.ErrLost            // Do: the lock was lost, or about to expire unrenewed, while the function ran
)

// ErrNotHeldHere is the per-master reason, in a NodeError, for a master on
// which Extend or Unlock found the key gone or holding another value. It
// does not match ErrNotHeld: whether the lock is lost is the call's error.
var ErrNotHeldHere = lockerr.ErrNotHeldHere

// NotHeldHere is the former name of ErrNotHeldHere.
//
// Deprecated: use ErrNotHeldHere.
var NotHeldHere = ErrNotHeldHere

// Error is the detail behind a failed Lock, Extend or Unlock: the key, the
// attempts made, why it stopped and what each failing master answered.
// Reach it with errors.As. See [lockerr.Error] for its fields.
type Error = lockerr.Error

// NodeError is what one master answered in a failed operation. See
// [lockerr.NodeError] for its fields.
type NodeError = lockerr.NodeError
