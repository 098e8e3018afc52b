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

import "github.com/leverege/lock/internal/core"

// Lock is one acquisition of a key; see the method docs for the contract.
type Lock = core.Lock

// Locker hands out locks; see the method docs for the contract.
type Locker = core.Locker

// Errors. Both backends return these same values; match them with errors.Is.
var (
	ErrNotAcquired     = core.ErrNotAcquired     // Lock gave up (held elsewhere, no quorum, context ended)
	ErrNotHeld         = core.ErrNotHeld         // Extend or Unlock: expired or no longer ours on a quorum
	ErrNoQuorum        = core.ErrNoQuorum        // Extend or Unlock: too few masters answered (or ctx ended); not known to be lost
	ErrDestroyed       = core.ErrDestroyed       // any call after (or interrupted by) Destroy
	ErrInvalidArgument = core.ErrInvalidArgument // empty key, bad ttl: refused before any I/O
	ErrTaken           = core.ErrTaken           // per node: the key holds another owner's value
	ErrUnreachable     = core.ErrUnreachable     // per node: no answer in time, or a broken connection
	ErrRejoining       = core.ErrRejoining       // per node: restarted, lost its data or was promoted less than the restart delay ago; vote not counted
	ErrAuth            = core.ErrAuth            // per node: credentials refused (WRONGPASS, NOAUTH, NOPERM): a configuration error, not retried
	ErrTLS             = core.ErrTLS             // per node: TLS handshake failed (certificate not trusted, client certificate refused or missing): not retried
	ErrReadOnly        = core.ErrReadOnly        // per node: a read-only replica (READONLY); vote not counted
	ErrNotReplicated   = core.ErrNotReplicated   // per node, with replicaAcks: too few replicas acknowledged its yes in time; vote not counted
	ErrEvictable       = core.ErrEvictable       // per node, with requireNoEviction: its maxmemory-policy can evict lock keys; vote not counted
	ErrSameServer      = core.ErrSameServer      // Cause: two configured masters are one server (same run_id); every Lock fails
	ErrExpired         = core.ErrExpired         // cause of an Extend refused because Expiration had passed
	ErrNoValidity      = core.ErrNoValidity      // cause: a quorum answered only after the validity window closed
	ErrLost            = core.ErrLost            // Do: the lock was lost, or about to expire unrenewed, while the function ran
)

// ErrNotHeldHere is the per-master reason, in a NodeError, for a master on
// which Extend or Unlock found the key gone or holding another value; it
// matches ErrNotHeld.
var ErrNotHeldHere = core.ErrNotHeldHere

// NotHeldHere is the former name of ErrNotHeldHere.
//
// Deprecated: use ErrNotHeldHere.
var NotHeldHere = ErrNotHeldHere

// Error is the detail behind a failed Lock, Extend or Unlock: the key, the
// attempts made, why it stopped and what each failing master answered.
// Reach it with errors.As.
type Error = core.Error

// NodeError is what one master answered in a failed operation.
type NodeError = core.NodeError
