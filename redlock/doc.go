// Package redlock implements the Redlock algorithm over N independent Redis
// masters, each reached through a redigo pool.
//
// A lock is held when a quorum (N/2+1 of the configured N) of masters
// accepted SET key value NX PX ttl and the validity window, ttl minus the
// time the answers took minus the drift allowance, is still open once they
// are in. Every command to a master is bounded by the node timeout, so a
// hung or cut-off master costs at most that long. A failed attempt is
// released on every master that may hold it, even when the caller's
// context has ended, before the next attempt or the error.
//
// Callers of one Client that wait for the same key queue first come, first
// served, and are woken when it is released (pub/sub announcements through
// the masters), with the timed retries as the fallback. How requests travel
// (one pipelined connection per master), how waiters are woken and how each
// option works inside is told in docs/algorithm.md and docs/architecture.md.
//
// What it guarantees, and under which assumptions: while the validity window
// ([Lock.Expiration]) is open, no other client holds the key on a quorum,
// provided the masters' clocks advance at about the rate of ours (within the
// drift factor) and a master that restarts does not come back empty while
// locks it granted are live (see [WithRestartDelay]). It cannot stop the
// holder itself from pausing (GC, swap, SIGSTOP) past its validity and
// acting on a lock it no longer has; keep critical sections well inside the
// validity, or fence the resource ([WithFencing]).
package redlock
