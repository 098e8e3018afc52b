// Package memlock is the in-process twin of package redlock: the same
// contract, errors and option semantics, with the process's memory as its
// one always-healthy master. Locks are shared by the users of one Locker
// value, not across processes.
package memlock

import (
	"context"
	"crypto/rand"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

// Defaults, as in the original package's InMemoryLock example.
const (
	DefaultRetry = core.DefaultMemRetry // 0
	DefaultDelay = core.DefaultMemDelay // 100ms
)

// addr names the one "master" in per-node errors.
const addr = "memory"

type options struct {
	namespace string
	retry     core.Retry
	fencing   bool
	observer  observe.Observer
	now       func() time.Time
}

// Option configures a [Locker]. Options not given keep their defaults; an
// option given as zero means zero.
type Option func(*options)

// WithNamespace sets the prefix that LockNs puts before keys.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithRetry sets how many times Lock tries again after its first attempt
// fails (n+1 attempts in all); a negative n retries until the context ends.
// Waiters for the same key queue first come, first served, and Unlock wakes
// the first; one queued behind others counts a delay as an attempt without
// making it, but for its last. Default 0.
func WithRetry(n int) Option { return func(o *options) { o.retry.Count = n } }

// WithDelay sets the wait between attempts. Default 100ms.
func WithDelay(d time.Duration) Option { return func(o *options) { o.retry.Delay = d } }

// WithFencing gives every acquisition a fencing token (Lock.Token), one more
// than the last given out for the same key by this Locker. The counters
// live as long as the Locker (one small entry per key ever locked). Default
// off (tokens are 0).
func WithFencing(on bool) Option { return func(o *options) { o.fencing = on } }

// WithObserver has o told what the Locker does: every Lock, attempt, Extend
// and Unlock (there are no masters, so no KindNode events). Default none,
// at no cost.
func WithObserver(o observe.Observer) Option { return func(o2 *options) { o2.observer = o } }

// WithClock replaces time.Now for deciding expiry (for tests). Retry waits
// still use real timers.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

type entry struct {
	value string
	exp   time.Time
}

// Locker hands out locks within one process. It is safe for concurrent use.
//
// It keeps one map entry per held key and no goroutine or timer per lock:
// expiry is decided by comparing times when a key is next touched, and
// expired entries are swept as the map grows.
type Locker struct {
	opts     options
	inflight core.InFlight
	// waiting is the line, per key, of this Locker's callers waiting for a
	// lock held by another; Unlock wakes the first.
	waiting core.Line

	mu     sync.Mutex
	keys   map[string]entry
	fences map[string]uint64 // the last token per key, with fencing
	swept  int               // len(keys) after the last sweep
}

// New returns a Locker.
func New(opts ...Option) (*Locker, error) {
	o := options{retry: core.Retry{Count: DefaultRetry, Delay: DefaultDelay}, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.retry.Delay < 0:
		return nil, core.Invalid("delay", "%v must not be negative", o.retry.Delay)
	case o.now == nil:
		return nil, core.Invalid("clock", "must not be nil")
	}
	m := &Locker{opts: o, keys: make(map[string]entry)}
	m.waiting.Linger = time.Second // keeps a contended key's line between bursts
	return m, nil
}

// Lock acquires key as given for ttl, retrying as the options say. When ctx
// ends first the error matches both ErrNotAcquired and ctx's error.
func (m *Locker) Lock(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	return m.acquire(ctx, key, nil, ttl)
}

// LockAllNs is LockAll on "<namespace>:<key>" for every key.
func (m *Locker) LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (*Lock, error) {
	ns, err := core.NamespacedAll(m.opts.namespace, keys)
	if err != nil {
		return nil, err
	}
	return m.LockAll(ctx, ns, ttl)
}

// LockAll acquires every key in keys, or none, for ttl; Extend and Unlock
// act on all of them, and the lock's Key is keys[0]. keys must not be empty
// nor hold a key twice; with fencing on, LockAll is refused (tokens are for
// single keys), as in package redlock.
func (m *Locker) LockAll(ctx context.Context, keys []string, ttl time.Duration) (*Lock, error) {
	first, set, err := core.KeySet(keys, m.opts.fencing)
	if err != nil {
		return nil, err
	}
	return m.acquire(ctx, first, set, ttl)
}

// acquire makes attempts as the retry schedule says until one wins.
func (m *Locker) acquire(ctx context.Context, key string, keys []string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckTTL(ttl, 0); err != nil {
		return nil, err
	}
	if err := m.inflight.Enter(); err != nil {
		return nil, &lockerr.Error{Op: "lock", Key: key, Err: err}
	}
	defer m.inflight.Exit()
	ttl = ttl.Truncate(time.Millisecond) // as Redis keeps it
	line := &m.waiting
	if keys != nil {
		line = nil // a line is per key; a set of keys retries on its schedule
	}
	var tries core.Tries
	tries.Start(ctx, m.inflight.Closing(), m.opts.retry, line, key, m.opts.observer)
	defer tries.Stop()
	for tries.Next() {
		l := m.attempt(key, keys, ttl)
		if l == nil {
			tries.Failed(core.Failure{Nodes: []*lockerr.NodeError{{Node: 0, Addr: addr, Err: lockerr.ErrTaken}}})
			continue
		}
		if err := tries.Won(); err != nil {
			m.drop(l) // Destroy has started: no one could unlock it
			return nil, err
		}
		return l, nil
	}
	return nil, tries.Err()
}

// LockNs is Lock on "<namespace>:<key>".
func (m *Locker) LockNs(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if err := core.CheckKey(key); err != nil {
		return nil, err
	}
	return m.Lock(ctx, core.Namespaced(m.opts.namespace, key), ttl)
}

// attempt takes the keys if none is held, or returns nil.
func (m *Locker) attempt(key string, keys []string, ttl time.Duration) *Lock {
	value := rand.Text()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.now()
	for k := range core.Each(key, keys) {
		if e, ok := m.keys[k]; ok && now.Before(e.exp) {
			return nil
		}
	}
	exp := now.Add(ttl)
	for k := range core.Each(key, keys) {
		m.keys[k] = entry{value: value, exp: exp}
	}
	m.sweep(now)
	var token uint64
	if m.opts.fencing {
		if m.fences == nil {
			m.fences = make(map[string]uint64)
		}
		token = m.fences[key] + 1
		m.fences[key] = token
	}
	var since time.Time
	if m.opts.observer != nil {
		since = time.Now()
	}
	return &Lock{m: m, key: key, keys: keys, value: value, exp: exp, token: token, since: since}
}

// sweep drops expired entries once the map has doubled since the last
// sweep, so a map of n live keys costs O(1) amortised per insert and never
// holds more than about twice what is live. m.mu must be held.
func (m *Locker) sweep(now time.Time) {
	if len(m.keys) < 2*max(m.swept, 64) {
		return
	}
	for k, e := range m.keys {
		if !now.Before(e.exp) {
			delete(m.keys, k)
		}
	}
	m.swept = len(m.keys)
}

// held reports whether key holds value and has not expired at now, dropping
// an expired entry of value on the way. m.mu must be held.
func (m *Locker) held(key, value string, now time.Time) bool {
	e, ok := m.keys[key]
	if !ok || e.value != value {
		return false
	}
	if !now.Before(e.exp) {
		delete(m.keys, key)
		return false
	}
	return true
}

// drop deletes l's keys that still hold l's value.
func (m *Locker) drop(l *Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.now()
	for k := range l.each() {
		if m.held(k, l.value, now) {
			delete(m.keys, k)
		}
	}
}

// heldAll reports whether every key of l holds its value at now. m.mu
// must be held.
func (m *Locker) heldAll(l *Lock, now time.Time) bool {
	for k := range l.each() {
		if !m.held(k, l.value, now) {
			return false
		}
	}
	return true
}

// Destroy interrupts calls in flight (they fail with ErrDestroyed), waits
// for them and forgets every lock. Later calls fail with ErrDestroyed.
// Destroy is idempotent and always returns nil.
func (m *Locker) Destroy() error {
	if m.inflight.Close() {
		m.waiting.Stop()
		m.mu.Lock()
		m.keys = nil
		m.mu.Unlock()
	}
	return nil
}

// Lock is one acquisition. It is immutable and safe for concurrent use.
type Lock struct {
	m     *Locker
	key   string
	value string
	exp   time.Time
	token uint64
	since time.Time // the acquisition, for the observer's hold time
	keys  []string  // of a lock on several keys (LockAll); nil for one key
}

// Keys is the lock's keys: Key alone, or all that LockAll locked.
func (l *Lock) Keys() []string {
	if l.keys == nil {
		return []string{l.key}
	}
	return slices.Clone(l.keys)
}

// each yields the lock's keys.
func (l *Lock) each() iter.Seq[string] { return core.Each(l.key, l.keys) }

// Token is the acquisition's fencing token (see WithFencing); 0 without
// fencing.
func (l *Lock) Token() uint64 { return l.token }

// Key is the key as stored.
func (l *Lock) Key() string { return l.key }

// Value is the random value this acquisition stored.
func (l *Lock) Value() string { return l.value }

// Expiration is the end of the validity window.
func (l *Lock) Expiration() time.Time { return l.exp }

// Extend resets the lock's time to live to ttl from now. It fails with
// ErrNotHeld once Expiration has passed or when the key is no longer this
// lock's, and with ErrNoQuorum when ctx has already ended; a failed Extend
// changes nothing.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	began := core.Now(l.m.opts.observer)
	next, err := l.extend(ctx, ttl)
	core.Report(l.m.opts.observer, observe.KindExtend, l.key, began, l.since, err)
	return next, err
}

func (l *Lock) extend(ctx context.Context, ttl time.Duration) (*Lock, error) {
	m := l.m
	if err := core.CheckTTL(ttl, 0); err != nil {
		return nil, err
	}
	ttl = ttl.Truncate(time.Millisecond)
	if err := m.inflight.Enter(); err != nil {
		return nil, &lockerr.Error{Op: "extend", Key: l.key, Err: err}
	}
	defer m.inflight.Exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.now()
	if !now.Before(l.exp) {
		return nil, &lockerr.Error{Op: "extend", Key: l.key, Attempts: 1, Err: lockerr.ErrNotHeld, Cause: lockerr.ErrExpired}
	}
	if err := core.CtxErr(ctx); err != nil {
		return nil, &lockerr.Error{Op: "extend", Key: l.key, Attempts: 1, Err: lockerr.ErrNoQuorum, Cause: err}
	}
	if !m.heldAll(l, now) {
		return nil, m.notHeld("extend", l.key)
	}
	exp := now.Add(ttl)
	for k := range l.each() {
		m.keys[k] = entry{value: l.value, exp: exp}
	}
	return &Lock{m: m, key: l.key, keys: l.keys, value: l.value, exp: exp, token: l.token, since: l.since}, nil
}

// Unlock deletes the key if it still holds this lock's value, and fails
// with ErrNotHeld (touching nothing) when it does not or has expired. Of a
// set of keys, those that still hold the value are deleted even when
// others no longer do (the lock was not held whole: ErrNotHeld), as the
// Redis release does.
func (l *Lock) Unlock(context.Context) error {
	began := core.Now(l.m.opts.observer)
	err := l.unlock()
	core.Report(l.m.opts.observer, observe.KindUnlock, l.key, began, l.since, err)
	return err
}

func (l *Lock) unlock() error {
	m := l.m
	if err := m.inflight.Enter(); err != nil {
		return &lockerr.Error{Op: "unlock", Key: l.key, Err: err}
	}
	defer m.inflight.Exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.now()
	all := true
	for k := range l.each() { // as in Redis: what still holds the value goes
		if m.held(k, l.value, now) {
			delete(m.keys, k)
			m.waiting.Released(k, l.value)
		} else {
			all = false
		}
	}
	if !all {
		return m.notHeld("unlock", l.key)
	}
	return nil
}

func (m *Locker) notHeld(op, key string) error {
	return &lockerr.Error{Op: op, Key: key, Attempts: 1, Err: lockerr.ErrNotHeld,
		Nodes: []*lockerr.NodeError{{Node: 0, Addr: addr, Err: lockerr.ErrNotHeldHere}}}
}
