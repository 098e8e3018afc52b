package benchmarks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	redsyncredigo "github.com/go-redsync/redsync/v4/redis/redigo"
	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/memlock"
	"github.com/leverege/lock/redlock"
)

// locker and held are all the benchmarks know of an implementation.
type locker interface {
	// Lock acquires key for ttl, retrying as the implementation was built
	// to, until ctx ends.
	Lock(ctx context.Context, key string, ttl time.Duration) (held, error)
}

type held interface {
	Unlock(ctx context.Context) error
	// Extend resets the lock's ttl and returns the lock to use from then on.
	Extend(ctx context.Context, ttl time.Duration) (held, error)
}

// The implementations, by the name that benchmark names carry (impl=...).
const (
	implOurs    = "ours"
	implMem     = "mem"
	implRedsync = "redsync"
	implFloor   = "floor"
)

// retry is how a case wants Lock to retry a key that is taken.
type retry struct {
	// forever retries until the Lock context ends (ours: WithRetryCount(-1);
	// redsync: WithTries(MaxInt32); mem: WithRetry(-1)). When false each
	// library keeps its default count.
	forever bool
	// delay is the fixed wait between attempts (ours: WithRetryDelay(delay)
	// and WithRetryJitter(0), the same schedule as redsync's
	// WithRetryDelay(delay), which has no jitter; mem: WithDelay(delay)).
	// Zero keeps each library's default schedule.
	delay time.Duration
}

// newPool is the one pool every implementation gets for each master: the
// same dial and the same limits, MaxIdle 64 and no cap on open connections.
func newPool(addr string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     64,
		IdleTimeout: 4 * time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr,
				redis.DialConnectTimeout(ioTimeout),
				redis.DialReadTimeout(ioTimeout),
				redis.DialWriteTimeout(ioTimeout))
		},
	}
}

func newPools(addrs []string) []*redis.Pool {
	pools := make([]*redis.Pool, len(addrs))
	for i, a := range addrs {
		pools[i] = newPool(a)
	}
	return pools
}

func closePools(pools []*redis.Pool) error {
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// newLocker builds impl over addrs (mem ignores them: it has one master, its
// own memory). The returned func releases what it holds (pools).
func newLocker(impl string, addrs []string, r retry) (locker, func() error, error) {
	switch impl {
	case implOurs:
		var opts []redlock.Option
		if r.forever {
			opts = append(opts, redlock.WithRetryCount(-1))
		}
		if r.delay > 0 {
			opts = append(opts, redlock.WithRetryDelay(r.delay), redlock.WithRetryJitter(0))
		}
		c, err := redlock.New(newPools(addrs), opts...)
		if err != nil {
			return nil, nil, err
		}
		return ours{c}, c.Destroy, nil
	case implMem:
		var opts []memlock.Option
		if r.forever {
			opts = append(opts, memlock.WithRetry(-1))
		}
		if r.delay > 0 {
			opts = append(opts, memlock.WithDelay(r.delay))
		}
		m, err := memlock.New(opts...)
		if err != nil {
			return nil, nil, err
		}
		return mem{m}, m.Destroy, nil
	case implRedsync:
		pools := newPools(addrs)
		rp := make([]redsyncredis.Pool, len(pools))
		for i, p := range pools {
			rp[i] = redsyncredigo.NewPool(p)
		}
		var opts []redsync.Option
		if r.forever {
			opts = append(opts, redsync.WithTries(math.MaxInt32))
		}
		if r.delay > 0 {
			opts = append(opts, redsync.WithRetryDelay(r.delay))
		}
		return &redsyncLocker{rs: redsync.New(rp...), opts: opts}, func() error { return closePools(pools) }, nil
	case implFloor:
		if r.forever || r.delay > 0 {
			return nil, nil, errors.New("floor does not retry")
		}
		f := &floor{pools: newPools(addrs), prefix: rand.Text()[:8] + ":"}
		return f, func() error { return closePools(f.pools) }, nil
	}
	return nil, nil, fmt.Errorf("unknown implementation %q", impl)
}

// --- ours: package redlock ----------------------------------------------------

type ours struct{ c *redlock.Client }

// oursHeld holds one pointer, so storing it in a held does not allocate.
type oursHeld struct{ l *redlock.Lock }

func (o ours) Lock(ctx context.Context, key string, ttl time.Duration) (held, error) {
	l, err := o.c.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return oursHeld{l}, nil
}

func (h oursHeld) Unlock(ctx context.Context) error { return h.l.Unlock(ctx) }

func (h oursHeld) Extend(ctx context.Context, ttl time.Duration) (held, error) {
	l, err := h.l.Extend(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return oursHeld{l}, nil
}

// --- mem: package memlock -----------------------------------------------------

type mem struct{ m *memlock.Locker }

type memHeld struct{ l *memlock.Lock }

func (m mem) Lock(ctx context.Context, key string, ttl time.Duration) (held, error) {
	l, err := m.m.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return memHeld{l}, nil
}

func (h memHeld) Unlock(ctx context.Context) error { return h.l.Unlock(ctx) }

func (h memHeld) Extend(ctx context.Context, ttl time.Duration) (held, error) {
	l, err := h.l.Extend(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return memHeld{l}, nil
}

// --- redsync: go-redsync/redsync/v4 over its redigo adapter ------------------

type redsyncLocker struct {
	rs   *redsync.Redsync
	opts []redsync.Option
}

// Lock makes a Mutex per call, as redsync is meant to be used: a Mutex
// keeps the value and validity of its last acquisition, so it is not safe
// for concurrent use and one Mutex serves one holder at a time.
func (r *redsyncLocker) Lock(ctx context.Context, key string, ttl time.Duration) (held, error) {
	m := r.rs.NewMutex(key, append(r.opts[:len(r.opts):len(r.opts)], redsync.WithExpiry(ttl))...)
	if err := m.LockContext(ctx); err != nil {
		return nil, err
	}
	return redsyncHeld{m}, nil
}

type redsyncHeld struct{ m *redsync.Mutex }

// errRedsyncFalse stands for a false status that came without an error;
// redsync gives one in every path today, so it is not expected.
var errRedsyncFalse = errors.New("redsync: operation reported false without an error")

// Unlock: redsync reports (false, err) when fewer than a quorum deleted the
// key; err joins ErrLockAlreadyExpired (key gone), *ErrNodeTaken (another
// value) and *RedisError per master, or is *ErrTaken when a quorum holds
// another value.
func (h redsyncHeld) Unlock(ctx context.Context) error {
	ok, err := h.m.UnlockContext(ctx)
	if !ok && err == nil {
		err = errRedsyncFalse
	}
	if ok {
		return nil
	}
	return err
}

// Extend: redsync extends by the expiry the Mutex was made with (the ttl
// given to Lock) and takes no other, so ttl is ignored here; every case
// extends by the ttl it locked with. It reports (false, err) like Unlock,
// or (false, ErrExtendFailed) when the new validity had already closed.
func (h redsyncHeld) Extend(ctx context.Context, _ time.Duration) (held, error) {
	ok, err := h.m.ExtendContext(ctx)
	if !ok && err == nil {
		err = errRedsyncFalse
	}
	if !ok {
		return nil, err
	}
	return h, nil
}

// --- floor: the least a Redlock cycle can cost over redigo --------------------

// floor is what any Redlock client over redigo must at least do: per Lock
// one SET NX PX to every master at once, and per Unlock (Extend) one
// compare-and-delete (compare-and-PEXPIRE) script to every master at once,
// one goroutine per master, waiting for every answer. No retry, no
// validity, no cleanup of a failed round, no contexts (redigo's DoContext
// costs a goroutine per command): a yardstick, not a lock to use.
type floor struct {
	pools  []*redis.Pool
	prefix string // of the values, unique to this floor
	seq    atomic.Uint64
}

var (
	floorRelease = redis.NewScript(1, `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	floorExtend  = redis.NewScript(1, `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	errFloor     = errors.New("floor: fewer than a quorum of masters agreed")
)

type floorHeld struct {
	f          *floor
	key, value string
}

// round runs op on every master at once and returns how many said yes.
func (f *floor) round(op func(redis.Conn) bool) int {
	var (
		wg  sync.WaitGroup
		yes atomic.Int32
	)
	for _, p := range f.pools {
		wg.Go(func() {
			c := p.Get()
			defer c.Close()
			if op(c) {
				yes.Add(1)
			}
		})
	}
	wg.Wait()
	return int(yes.Load())
}

func (f *floor) quorum() int { return len(f.pools)/2 + 1 }

func (f *floor) Lock(_ context.Context, key string, ttl time.Duration) (held, error) {
	value := f.prefix + strconv.FormatUint(f.seq.Add(1), 36)
	ms := ttl.Milliseconds()
	yes := f.round(func(c redis.Conn) bool {
		ok, err := redis.String(c.Do("SET", key, value, "NX", "PX", ms))
		return err == nil && ok == "OK"
	})
	if yes < f.quorum() {
		return nil, errFloor
	}
	return &floorHeld{f, key, value}, nil
}

func (h *floorHeld) Unlock(context.Context) error {
	yes := h.f.round(func(c redis.Conn) bool {
		n, err := redis.Int(floorRelease.Do(c, h.key, h.value))
		return err == nil && n == 1
	})
	if yes < h.f.quorum() {
		return errFloor
	}
	return nil
}

func (h *floorHeld) Extend(_ context.Context, ttl time.Duration) (held, error) {
	ms := ttl.Milliseconds()
	yes := h.f.round(func(c redis.Conn) bool {
		n, err := redis.Int(floorExtend.Do(c, h.key, h.value, ms))
		return err == nil && n == 1
	})
	if yes < h.f.quorum() {
		return nil, errFloor
	}
	return h, nil
}
