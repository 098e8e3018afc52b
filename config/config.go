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
// an option given as 0 means 0. A connection's "tls" is true or an object
// of TLS options with Node's names (see [TLS]).
//
// Passwords and private keys are never shown: errors show a URL redacted
// (redis://user:xxxxx@host), and a [Config], [Connection] or [TLS] printed
// with fmt, logged with log/slog or encoded with encoding/json shows them
// as xxxxx.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// Config selects and configures a backend. Printed, logged or encoded, it
// shows its connections' passwords and private keys as xxxxx (see
// [Connection.Format]).
type Config struct {
	Type      string // Redis or InMemory
	Namespace string // used by LockNs when the caller gives none

	// Redis only, but for LockOptions.Fencing, which both types take.
	Connections []Connection // the independent masters, at least one
	LockOptions LockOptions  // the Redlock options ("lockOptions"); only Fencing applies to InMemory too

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
	// ReplicaAcks ("replicaAcks"; ours): a master's yes to an acquisition
	// or extension counts once that many of its replicas have the write
	// (WAIT); 0, the default, counts it at once. It narrows what a failover
	// can lose; it does not close it. See redlock.WithReplicaAcks.
	ReplicaAcks int
	// RequireNoEviction ("requireNoEviction"; ours): the votes of masters
	// whose maxmemory-policy can evict lock keys do not count. Off by
	// default (such masters are only warned of). See
	// redlock.WithRequireNoEviction.
	RequireNoEviction bool
}

// Connection is one Redis master: host and port (with optional credentials,
// database and TLS), or a redis:// or rediss:// URL carrying all of them
// (and TLS, beside a rediss:// URL, to say how to speak it). Printed with
// fmt, logged with log/slog or encoded with encoding/json, it shows its
// password and private key as xxxxx.
type Connection struct {
	Host     string // host name or address ("host")
	Port     int    // TCP port ("port")
	Username string // ACL user for AUTH ("username"); needs Password
	Password string // for AUTH ("password"); shown as xxxxx
	DB       int    // database to SELECT ("db")
	// TLS, when not nil, dials with TLS as it says ("tls"). With URL, it is
	// allowed beside a rediss:// URL only, whose scheme already means TLS.
	TLS *TLS
	// URL ("url") is redis://[user:password@]host[:port][/db], or rediss://
	// for TLS; the fields above but TLS must then be empty.
	URL string
}

// Addr is the master's host:port (from the URL when there is one). It never
// shows the user info of a URL, which may hold the password.
func (c Connection) Addr() string {
	if c.URL != "" {
		if e, err := parseURL(c.URL); err == nil {
			return e.addr()
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
// built in Go. It reads the TLS files that connections name, and checks
// their PEM as a dial would.
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
		case o.ReplicaAcks < 0:
			return fieldErr("lockOptions.replicaAcks", "%d must not be negative", o.ReplicaAcks)
		case o.ReplicaAcks > 0 && o.NodeTimeout < core.MinAckNodeTimeout:
			return fieldErr("lockOptions.nodeTimeout", "%v is too short for lockOptions.replicaAcks: at least %v, as a master ends a WAIT that times out only on its next 100 ms tick", o.NodeTimeout, core.MinAckNodeTimeout)
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

// validate checks c, reading its TLS files and PEM as a dial would.
func (c Connection) validate() error {
	e, err := c.endpoint()
	if err == nil && e.tls != nil {
		_, err = e.tls.config(e.host)
	}
	return err
}

// endpoint is where and how to dial a master, from its URL or its fields.
type endpoint struct {
	host               string
	port               int
	username, password string
	db                 int
	tls                *TLS // nil: no TLS
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// endpoint checks c and says where and how to dial it.
func (c Connection) endpoint() (endpoint, error) {
	if c.URL != "" {
		if c.Host != "" || c.Port != 0 || c.Username != "" || c.Password != "" || c.DB != 0 {
			return endpoint{}, &connErr{"url", "give either url or host/port/username/password/db, not both"}
		}
		e, err := parseURL(c.URL)
		switch {
		case err != nil:
			return endpoint{}, err
		case c.TLS != nil && e.tls == nil:
			return endpoint{}, &connErr{"tls", "needs a rediss:// url (a url's scheme says whether to use TLS): use rediss://"}
		case c.TLS != nil:
			e.tls = c.TLS
		}
		return e, nil
	}
	switch {
	case c.Host == "":
		return endpoint{}, &connErr{"host", "must not be empty"}
	case strings.ContainsAny(c.Host, "/ @") || (strings.Contains(c.Host, ":") && net.ParseIP(c.Host) == nil):
		return endpoint{}, &connErr{"host", fmt.Sprintf("%q is not a host name or address (give the port in port)", c.Host)}
	case c.Port < 1 || c.Port > 65535:
		return endpoint{}, &connErr{"port", fmt.Sprintf("%d is not a TCP port (1-65535)", c.Port)}
	case c.DB < 0:
		return endpoint{}, &connErr{"db", fmt.Sprintf("%d must not be negative", c.DB)}
	case c.Username != "" && c.Password == "":
		return endpoint{}, &connErr{"password", fmt.Sprintf("missing: username %q needs a password (no AUTH is sent without one)", c.Username)}
	}
	return endpoint{host: c.Host, port: c.Port, username: c.Username, password: c.Password, db: c.DB, tls: c.TLS}, nil
}

// parseURL reads a redis:// or rediss:// URL as redigo's DialURL does. Its
// errors show the URL redacted (see redactURL) and never quote a part of
// it that could come from the user info: a password with an unescaped /,
// ? or # makes the parser take the rest of it for the host, port or path.
func parseURL(raw string) (endpoint, error) {
	shown := strconv.Quote(redactURL(raw))
	bad := func(msg string) error { return &connErr{"url", shown + ": " + msg} }
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, and its reason may quote a part of the
		// user info: parse the URL again without it to tell the two apart.
		var ue *url.Error
		if _, err := url.Parse(redactUserInfo(raw)); errors.As(err, &ue) {
			return endpoint{}, bad("not a URL: " + ue.Err.Error())
		}
		return endpoint{}, bad("not a URL: the user info (before @) is not valid; a / ? # or % in a password must be percent-encoded")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return endpoint{}, bad("the scheme must be redis or rediss")
	}
	if u.Opaque != "" {
		return endpoint{}, bad("no host: want " + u.Scheme + "://host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return endpoint{}, bad("a query or fragment (after ? or #) is not supported")
	}
	e := endpoint{host: u.Hostname(), port: DefaultPort}
	if u.Scheme == "rediss" {
		e.tls = &TLS{}
	}
	if e.host == "" {
		return endpoint{}, bad("no host")
	}
	if strings.Contains(e.host, ":") && net.ParseIP(e.host) == nil {
		return endpoint{}, bad("the host is not a host name or address")
	}
	if p := u.Port(); p != "" {
		if e.port, err = strconv.Atoi(p); err != nil || e.port < 1 || e.port > 65535 {
			return endpoint{}, bad("the port is not a TCP port (1-65535)")
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if strings.Trim(db, "0123456789") != "" {
			return endpoint{}, bad("the database (the path) is not a number")
		}
		if e.db, err = strconv.Atoi(db); err != nil {
			return endpoint{}, bad("the database (the path) is out of range")
		}
	}
	if u.User != nil {
		// As redigo: a user info without a colon is a password alone, as
		// redis-cli takes it.
		if pw, ok := u.User.Password(); ok {
			e.username, e.password = u.User.Username(), pw
		} else {
			e.password = u.User.Username()
		}
	}
	return e, nil
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
