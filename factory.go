package lock

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/config"
	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/memlock"
	"github.com/leverege/lock/redlock"
)

// EnvVar names the environment variable that [FromEnv] reads.
const EnvVar = "LOCK_CONFIG"

// Options are the arguments of [Create], as in the original create().
type Options struct {
	// Namespace is the prefix LockNs puts before keys ("<Namespace>:<key>").
	// When empty, the namespace from LockConfig is used, if any.
	Namespace string
	// LockConfig selects and configures the backend; nil means in-memory
	// with the defaults (retry 0, delay 100ms).
	LockConfig *config.Config
	// Observer, when set, is told what the Locker does (see Event): for
	// metrics and logs, such as SlogObserver or the Prometheus collector
	// in github.com/leverege/lock/prom.
	Observer Observer
}

// Create returns the Locker that opts describe. A Redis Locker gets one
// connection pool per master; Destroy closes them.
func Create(opts Options) (Locker, error) {
	cfg := opts.LockConfig
	if cfg == nil {
		cfg = config.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ns := opts.namespace(cfg)
	switch cfg.Type {
	case config.Redis:
		lo := cfg.LockOptions
		pools := make([]*redis.Pool, len(cfg.Connections))
		names := make([]string, len(cfg.Connections))
		for i, c := range cfg.Connections {
			pools[i], names[i] = newPool(c, lo.NodeTimeout), c.Addr()
		}
		c, err := redlock.New(pools,
			redlock.WithNamespace(ns),
			redlock.WithDriftFactor(lo.DriftFactor),
			redlock.WithRetryCount(lo.RetryCount),
			redlock.WithRetryDelay(lo.RetryDelay),
			redlock.WithRetryJitter(lo.RetryJitter),
			redlock.WithNodeTimeout(lo.NodeTimeout),
			redlock.WithRestartDelay(lo.RestartDelay),
			redlock.WithFencing(lo.Fencing),
			redlock.WithReplicaAcks(lo.ReplicaAcks),
			redlock.WithRequireNoEviction(lo.RequireNoEviction),
			redlock.WithObserver(opts.Observer),
			redlock.WithNodeNames(names...),
		)
		if err != nil {
			return nil, err
		}
		return Redis(c), nil
	default: // config.InMemory; Validate allows nothing else
		m, err := memlock.New(memlock.WithNamespace(ns), memlock.WithRetry(cfg.Retry), memlock.WithDelay(cfg.Delay),
			memlock.WithFencing(cfg.LockOptions.Fencing), memlock.WithObserver(opts.Observer))
		if err != nil {
			return nil, err
		}
		return InMemory(m), nil
	}
}

// NamespacedKey is key as LockNs, of the Locker that Create(o) returns,
// stores it: "<namespace>:<key>", with o.Namespace, else the namespace of
// o.LockConfig; key itself when there is none.
func (o Options) NamespacedKey(key string) string {
	cfg := o.LockConfig
	if cfg == nil {
		cfg = config.Default()
	}
	return core.Namespaced(o.namespace(cfg), key)
}

// namespace is the namespace that LockNs puts before keys: o's, else cfg's.
func (o Options) namespace(cfg *config.Config) string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return cfg.Namespace
}

// FromEnv is Create with the configuration parsed from LOCK_CONFIG (any of
// the JSON shapes package config accepts); when LOCK_CONFIG is unset or
// empty it is the in-memory default.
func FromEnv(namespace string) (Locker, error) {
	opts := Options{Namespace: namespace}
	if s := os.Getenv(EnvVar); s != "" {
		cfg, err := config.Parse([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		opts.LockConfig = cfg
	}
	return Create(opts)
}

// newPool dials one master. Each command is bounded by the node timeout
// through its context (connection included); the read and write timeouts
// bound what a context cannot reach, such as AUTH and SELECT while dialing.
func newPool(c config.Connection, timeout time.Duration) *redis.Pool {
	dial := func(ctx context.Context) (redis.Conn, error) { return c.Dial(ctx, timeout) }
	return &redis.Pool{
		DialContext: dial,
		MaxIdle:     64,
		IdleTimeout: 4 * time.Minute,
	}
}

// Redis presents a redlock.Client, built with your own pools, as a Locker,
// for Do and for code written against Locker. Destroy destroys the Client.
func Redis(c *redlock.Client) Locker { return locker[*redlock.Lock, *redlock.Client]{c} }

// InMemory presents a memlock.Locker as a Locker.
func InMemory(m *memlock.Locker) Locker { return locker[*memlock.Lock, *memlock.Locker]{m} }

// backendLock is what each backend's lock type offers; it differs from Lock
// only in that Extend returns the backend's own type.
type backendLock[L any] interface {
	Key() string
	Keys() []string
	Value() string
	Expiration() time.Time
	Token() uint64
	Extend(ctx context.Context, ttl time.Duration) (L, error)
	Unlock(ctx context.Context) error
}

// backend is what each backend's locker offers; it differs from Locker
// only in that it returns the backend's own lock type.
type backend[L backendLock[L]] interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (L, error)
	LockNs(ctx context.Context, key string, ttl time.Duration) (L, error)
	LockAll(ctx context.Context, keys []string, ttl time.Duration) (L, error)
	LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (L, error)
	Destroy() error
}

// locker presents a backend as a Locker.
type locker[L backendLock[L], B backend[L]] struct{ b B }

func (l locker[L, B]) Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	return wrap(l.b.Lock(ctx, key, ttl))
}

func (l locker[L, B]) LockNs(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	return wrap(l.b.LockNs(ctx, key, ttl))
}

func (l locker[L, B]) LockAll(ctx context.Context, keys []string, ttl time.Duration) (Lock, error) {
	return wrap(l.b.LockAll(ctx, keys, ttl))
}

func (l locker[L, B]) LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (Lock, error) {
	return wrap(l.b.LockAllNs(ctx, keys, ttl))
}

func (l locker[L, B]) Destroy() error { return l.b.Destroy() }

// handle presents a backend's lock as a Lock. It holds one pointer, so
// storing it in the interface does not allocate.
type handle[L backendLock[L]] struct{ l L }

func wrap[L backendLock[L]](l L, err error) (Lock, error) {
	if err != nil {
		return nil, err
	}
	return handle[L]{l}, nil
}

func (h handle[L]) Key() string                      { return h.l.Key() }
func (h handle[L]) Keys() []string                   { return h.l.Keys() }
func (h handle[L]) Value() string                    { return h.l.Value() }
func (h handle[L]) Expiration() time.Time            { return h.l.Expiration() }
func (h handle[L]) Token() uint64                    { return h.l.Token() }
func (h handle[L]) Unlock(ctx context.Context) error { return h.l.Unlock(ctx) }
func (h handle[L]) Extend(ctx context.Context, ttl time.Duration) (Lock, error) {
	return wrap(h.l.Extend(ctx, ttl))
}
