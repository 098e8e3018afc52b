package redlock

import (
	"fmt"
	"math"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/observe"
)

// Defaults, as in the original package (node-redlock v4) where it has the
// option, and chosen here where it has not.
const (
	DefaultDriftFactor = core.DefaultDriftFactor // 0.01
	DefaultRetryCount  = core.DefaultRetryCount  // 10
	DefaultRetryDelay  = core.DefaultRetryDelay  // 200ms
	DefaultRetryJitter = core.DefaultRetryJitter // 100ms
	// DefaultNodeTimeout (50ms) bounds each command to one master,
	// connection included. The Redlock spec advises a per-node timeout far
	// below the ttl (5-50 ms for a 10 s ttl) so that a dead master costs
	// little.
	DefaultNodeTimeout = core.DefaultNodeTimeout
)

// MarkerKey is the key on every master that WithRestartDelay uses to tell a
// master that kept its data and its history from one that lost them. It
// holds "<born>:<replid>": the server time (ms) at which a client first
// found the dataset without it, and the master's replication ID
// (master_replid) then. Lock refuses it as a key.
const MarkerKey = core.MarkerKey

// FenceKeyPrefix starts the key of every fencing counter (see
// WithFencing): FenceKeyPrefix+key. Lock refuses keys that start with it.
const FenceKeyPrefix = core.FenceKeyPrefix

type options struct {
	namespace   string
	driftFactor float64
	retry       core.Retry
	nodeTimeout time.Duration
	names       []string
	// restartDelay > 0 turns on the restart protection.
	restartDelay time.Duration
	fencing      bool
	// replicaAcks > 0: a master's yes to an acquisition or extension
	// counts once that many of its replicas have it.
	replicaAcks int
	// requireNoEviction: the votes of masters whose maxmemory-policy can
	// evict lock keys do not count.
	requireNoEviction bool
	observer          observe.Observer
	// broken is empty but under the build tag lockbroken, where the safety
	// suite breaks the algorithm on purpose (see broken.go).
	broken broken
}

// Option configures a [Client]. Options not given keep their defaults; an
// option given as zero means zero.
type Option func(*options)

// WithNamespace sets the prefix that LockNs puts before keys
// ("<namespace>:<key>").
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithDriftFactor sets the share of the ttl allowed for clock drift between
// the masters and this process; the validity of a lock is
// ttl - elapsed - (round(f*ttl) + 2ms). It must be in [0, 1). Default 0.01.
func WithDriftFactor(f float64) Option { return func(o *options) { o.driftFactor = f } }

// WithRetryCount sets how many times Lock tries again after its first
// attempt fails (n+1 attempts in all); a negative n retries until the
// context ends. A caller queued behind others of this Client for the same
// key counts a retry delay as an attempt without sending one, but for its
// last (see the package doc). Default 10.
func WithRetryCount(n int) Option { return func(o *options) { o.retry.Count = n } }

// WithRetryDelay sets the base wait between attempts. Default 200ms.
func WithRetryDelay(d time.Duration) Option { return func(o *options) { o.retry.Delay = d } }

// WithRetryJitter sets the most that is randomly added to or taken from the
// retry delay, so that contenders spread out. Default 100ms.
func WithRetryJitter(d time.Duration) Option { return func(o *options) { o.retry.Jitter = d } }

// WithNodeTimeout bounds every request to one master (the wait for its
// answer) and dialing the master's connection; the connection itself
// waits a quarter longer for a reply before it is given up. Default 50ms.
func WithNodeTimeout(d time.Duration) Option { return func(o *options) { o.nodeTimeout = d } }

// WithRestartDelay protects against masters that restart (without
// persistence, or with a snapshot older than their locks), are flushed, or
// are replaced by a replica promoted in a failover (replication is
// asynchronous, so the replica may lack the latest lock keys) while they
// hold locks: such a master could hand the same key to a second owner while
// the first owner's lock still lives on the other masters. With d > 0, a
// master that has been up for less than d, or whose data or replication
// history is younger than d (see MarkerKey), does not vote for new locks:
// the Redlock spec's "delayed restart", done from the client side. d must
// be at least the largest ttl any client uses; Lock and Extend refuse a
// longer ttl. Every client of the same masters must use the protection
// with the same d: a client without it counts the votes of masters the
// others refuse. Default 0: off, and acquisition is a plain SET NX PX. When
// turned on, masters that were just started, flushed or promoted grant
// nothing until d has passed; the wait of a new master starts at its
// first lock request, not at its start. Needs Redis 4 or later (the script
// calls TIME and INFO; the replication ID came with Redis 4).
func WithRestartDelay(d time.Duration) Option { return func(o *options) { o.restartDelay = d } }

// WithFencing gives every acquisition a fencing token ([Lock.Token]),
// strictly greater than every token given out before for the same key, by
// any client that uses fencing on the same masters, for as long as the
// masters keep their data. Each key gets a counter, FenceKeyPrefix+key,
// which never expires. The acquiring script reads the counters along with
// its SET; the client takes one more than the largest it read from the
// masters that granted the lock, and writes it back to a quorum, guarded by
// its value still holding the key, before Lock returns: one more round trip
// per acquisition. Default off (tokens are 0).
func WithFencing(on bool) Option { return func(o *options) { o.fencing = on } }

// WithReplicaAcks makes a master's yes to an acquisition or an extension
// count only once n of its replicas have the write: after the SET (or the
// extend) the Client sends WAIT n on that master, with the node timeout
// less 150 ms, on the same connection (which it holds up meanwhile). It
// needs a node timeout of at least 200 ms (New refuses less): a master
// ends a WAIT that times out only on its next 100 ms tick. Replication is
// asynchronous, so a failover can lose the lock keys written just before
// it; this narrows that window to what the replicas had not acknowledged,
// it does not close it (a replica that acknowledged may not be the one
// promoted, and acknowledged writes are not fsynced): keep WithRestartDelay
// on, which catches a promoted replica. Default 0: votes count at once.
func WithReplicaAcks(n int) Option { return func(o *options) { o.replicaAcks = n } }

// WithRequireNoEviction makes the votes of masters whose maxmemory-policy
// can evict lock keys (every lock key has a ttl: any policy but noeviction,
// once maxmemory is set) not count: they answer ErrEvictable. The Client
// learns a master's policy from INFO when a connection to it opens, and
// tells the observer of such masters whether or not this is on. Default
// off.
func WithRequireNoEviction(on bool) Option { return func(o *options) { o.requireNoEviction = on } }

// WithObserver has o told what the Client does: every Lock, attempt,
// Extend and Unlock, and every master's answer with its latency (see
// observe.Event, re-exported as lock.Event). Default none, at no cost.
func WithObserver(o observe.Observer) Option { return func(o2 *options) { o2.observer = o } }

// WithNodeNames names the masters (their addresses, say) in errors; names
// are matched to pools by position. By default a master is named "pool[i]".
func WithNodeNames(names ...string) Option { return func(o *options) { o.names = names } }

func buildOptions(n int, opts []Option) (options, error) {
	o := options{
		driftFactor: DefaultDriftFactor,
		retry:       core.Retry{Count: DefaultRetryCount, Delay: DefaultRetryDelay, Jitter: DefaultRetryJitter},
		nodeTimeout: DefaultNodeTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case math.IsNaN(o.driftFactor) || o.driftFactor < 0 || o.driftFactor >= 1:
		return o, core.Invalid("drift factor", "%v must be in [0, 1)", o.driftFactor)
	case o.retry.Delay < 0:
		return o, core.Invalid("retry delay", "%v must not be negative", o.retry.Delay)
	case o.retry.Jitter < 0:
		return o, core.Invalid("retry jitter", "%v must not be negative", o.retry.Jitter)
	case o.nodeTimeout <= 0:
		return o, core.Invalid("node timeout", "%v must be positive", o.nodeTimeout)
	case o.restartDelay < 0:
		return o, core.Invalid("restart delay", "%v must not be negative", o.restartDelay)
	case o.replicaAcks < 0:
		return o, core.Invalid("replica acks", "%d must not be negative", o.replicaAcks)
	case o.replicaAcks > 0 && o.nodeTimeout < core.MinAckNodeTimeout:
		return o, core.Invalid("node timeout", "%v is too short for replica acks: at least %v, as a master ends a WAIT that times out only on its next 100 ms tick", o.nodeTimeout, core.MinAckNodeTimeout)
	case o.names != nil && len(o.names) != n:
		return o, core.Invalid("node names", "%d names for %d pools", len(o.names), n)
	}
	if o.names == nil {
		o.names = make([]string, n)
		for i := range o.names {
			o.names[i] = fmt.Sprintf("pool[%d]", i)
		}
	}
	return o, nil
}

// checkTTL refuses, before any I/O, a ttl that leaves no validity window or
// that the restart protection could not cover.
func (o *options) checkTTL(ttl time.Duration) error {
	if err := core.CheckTTL(ttl, o.drift(ttl)); err != nil {
		return err
	}
	return o.checkRestartTTL(ttl)
}

// drift is the allowance taken off every validity window (core.Drift).
func (o *options) drift(ttl time.Duration) time.Duration {
	if o.broken.noDrift() {
		return 0
	}
	return core.Drift(o.driftFactor, ttl)
}
