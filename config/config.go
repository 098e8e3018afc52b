// Package config parses the JSON that configures a lock, in the shapes the
// original @leverege/lock accepts, so that LOCK_CONFIG values written for it
// work unchanged:
//
//	{"type":"redis","connection":{"host":"127.0.0.1","port":6379},
//	 "lockOptions":{"driftFactor":0.01,"retryCount":0,"retryDelay":200,"retryJitter":100}}
//	{"type":"inMemory","retry":0,"delay":100}
//	{"namespace":"myApp","lockConfig":{...one of the above...}}
//
// Several independent masters are given as "connections":[{...},...]; a
// single "connection" is the one-master case. Durations are milliseconds in
// JSON and time.Duration in Go. An option that is absent takes its default;
// an option given as 0 means 0.
package config

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
)

// The backend types, spelt as the original spells them.
const (
	Redis    = "redis"
	InMemory = "inMemory"
)

// Defaults. The lock options are node-redlock v4's; the in-memory ones are
// the original README's; NodeTimeout is ours.
const (
	DefaultDriftFactor = core.DefaultDriftFactor // 0.01
	DefaultRetryCount  = core.DefaultRetryCount  // 10
	DefaultRetryDelay  = core.DefaultRetryDelay  // 200ms
	DefaultRetryJitter = core.DefaultRetryJitter // 100ms
	DefaultNodeTimeout = core.DefaultNodeTimeout // 50ms
	DefaultRetry       = core.DefaultMemRetry    // 0
	DefaultDelay       = core.DefaultMemDelay    // 100ms
	DefaultHost        = "127.0.0.1"
	DefaultPort        = 6379

	// MaxDuration bounds every duration option: anything longer is surely a
	// mistake (seconds given as milliseconds, say).
	MaxDuration = 24 * time.Hour
)

// Config selects and configures a backend.
type Config struct {
	Type      string // Redis or InMemory
	Namespace string // used by LockNs when the caller gives none

	// Redis only, but for LockOptions.Fencing, which both types take.
	Connections []Connection // the independent masters, at least one
	LockOptions LockOptions

	// InMemory only.
	Retry int           // retries after the first attempt; negative: until the context ends
	Delay time.Duration // wait between attempts
}

// LockOptions are the Redlock options (the original's "lockOptions").
type LockOptions struct {
	DriftFactor float64       // share of the ttl allowed for clock drift, in [0, 1)
	RetryCount  int           // retries after the first attempt; negative: until the context ends
	RetryDelay  time.Duration // base wait between attempts
	RetryJitter time.Duration // most added to or taken from RetryDelay at random
	NodeTimeout time.Duration // bound on each command to one master ("nodeTimeout"); ours
	// RestartDelay ("restartDelay"; ours): a master that lost its data less
	// than this long ago does not vote; 0 is off. See redlock.WithRestartDelay.
	RestartDelay time.Duration
	// Fencing ("fencing"; ours): every acquisition gets a fencing token,
	// Lock.Token(). Off by default. See redlock.WithFencing.
	Fencing bool
}

// Connection is one Redis master: host and port (with optional credentials,
// database and TLS), or a redis:// or rediss:// URL carrying all of them.
type Connection struct {
	Host     string
	Port     int
	Username string
	Password string
	DB       int
	TLS      bool
	URL      string
}

// Addr is the master's host:port (from the URL when there is one).
func (c Connection) Addr() string {
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err == nil {
			if u.Port() == "" {
				return net.JoinHostPort(u.Hostname(), strconv.Itoa(DefaultPort))
			}
			return u.Host
		}
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// DefaultLockOptions returns the lock options used where JSON gives none.
func DefaultLockOptions() LockOptions {
	return LockOptions{
		DriftFactor: DefaultDriftFactor,
		RetryCount:  DefaultRetryCount,
		RetryDelay:  DefaultRetryDelay,
		RetryJitter: DefaultRetryJitter,
		NodeTimeout: DefaultNodeTimeout,
	}
}

// Default returns the configuration used when there is none: in-memory, with
// the original's retry and delay.
func Default() *Config {
	return &Config{Type: InMemory, Retry: DefaultRetry, Delay: DefaultDelay}
}

// Validate reports the first thing wrong with c, naming the field as the
// JSON names it. Parse validates what it returns; call Validate on a Config
// built in Go.
func (c *Config) Validate() error {
	switch c.Type {
	case InMemory:
		if err := checkDuration("delay", c.Delay, false); err != nil {
			return err
		}
		if len(c.Connections) > 0 {
			return fieldErr("connections", "only a %q lock has connections", Redis)
		}
	case Redis:
		if len(c.Connections) == 0 {
			return fieldErr("connection", "missing: a %q lock needs \"connection\" or \"connections\"", Redis)
		}
		for i, conn := range c.Connections {
			if err := conn.validate(); err != nil {
				return fmt.Errorf("config: connections[%d].%w", i, err)
			}
		}
		o := c.LockOptions
		switch {
		case math.IsNaN(o.DriftFactor) || o.DriftFactor < 0 || o.DriftFactor >= 1:
			return fieldErr("lockOptions.driftFactor", "%v must be in [0, 1)", o.DriftFactor)
		}
		if err := cmp.Or(
			checkDuration("lockOptions.retryDelay", o.RetryDelay, false),
			checkDuration("lockOptions.retryJitter", o.RetryJitter, false),
			checkDuration("lockOptions.nodeTimeout", o.NodeTimeout, true),
			checkDuration("lockOptions.restartDelay", o.RestartDelay, false),
		); err != nil {
			return err
		}
	case "":
		return fieldErr("type", "missing: want %q or %q", Redis, InMemory)
	default:
		return fieldErr("type", "unknown type %q: want %q or %q", c.Type, Redis, InMemory)
	}
	return nil
}

// connErr is a problem with one field of a connection; the caller puts the
// connection's place in front.
type connErr struct{ field, msg string }

func (e *connErr) Error() string { return e.field + ": " + e.msg }

func (c Connection) validate() error {
	if c.URL != "" {
		if c.Host != "" || c.Port != 0 || c.Username != "" || c.Password != "" || c.DB != 0 || c.TLS {
			return &connErr{"url", "give either url or host/port/username/password/db/tls, not both"}
		}
		return validateURL(c.URL)
	}
	switch {
	case c.Host == "":
		return &connErr{"host", "must not be empty"}
	case strings.ContainsAny(c.Host, "/ "):
		return &connErr{"host", fmt.Sprintf("%q is not a host name or address", c.Host)}
	case c.Port < 1 || c.Port > 65535:
		return &connErr{"port", fmt.Sprintf("%d is not a TCP port (1-65535)", c.Port)}
	case c.DB < 0:
		return &connErr{"db", fmt.Sprintf("%d must not be negative", c.DB)}
	}
	return nil
}

func validateURL(raw string) error {
	bad := func(format string, args ...any) error {
		return &connErr{"url", fmt.Sprintf("%q: ", raw) + fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return bad("scheme must be redis or rediss")
	}
	if u.Hostname() == "" {
		return bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a TCP port (1-65535)", p)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return bad("database %q is not a number", db)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("query and fragment are not supported")
	}
	return nil
}

func checkDuration(field string, d time.Duration, positive bool) error {
	switch {
	case positive && d <= 0:
		return fieldErr(field, "%v must be positive", d)
	case d < 0:
		return fieldErr(field, "%v must not be negative", d)
	case d > MaxDuration:
		return fieldErr(field, "%v is more than the %v allowed", d, MaxDuration)
	}
	return nil
}

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...))
}

// Dial connects to the master as a Locker built by lock.Create does: with
// its credentials, database and TLS (or its URL), the connection bounded
// by ctx, and each read and write by timeout (when positive).
func (c Connection) Dial(ctx context.Context, timeout time.Duration) (redis.Conn, error) {
	var opts []redis.DialOption
	if timeout > 0 {
		opts = append(opts, redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	}
	if c.URL != "" {
		return redis.DialURLContext(ctx, c.URL, opts...)
	}
	return redis.DialContext(ctx, "tcp", c.Addr(), append(opts,
		redis.DialUsername(c.Username),
		redis.DialPassword(c.Password),
		redis.DialDatabase(c.DB),
		redis.DialUseTLS(c.TLS),
	)...)
}
