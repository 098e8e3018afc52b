//go:build unix

// Package production proves the lock library on redis-server processes
// configured as production masters are, each started on 127.0.0.1 by the
// test (redistest.StartServer), with certificates the test makes:
//
//   - TLS with client certificates (tls-auth-clients yes): the whole
//     conformance suite passes through lock.Create over TLS, with the
//     certificates given as PEM text, as files and beside a rediss:// URL;
//     a wrong CA and a missing client certificate each fail a Lock at once
//     (one attempt), with an error that says which, names the master and
//     matches ErrTLS.
//   - ACL users (default user off): the rule set written in
//     docs/configuration.md, read from there, is enough for the whole
//     conformance suite, plain and with restartDelay and fencing, with
//     nothing denied on any master (ACL LOG); each command taken out of it
//     gives a clear error carrying the server's reply, never ErrNotHeld, and
//     leaves behind only keys that expire.
//   - Credentials refused (WRONGPASS, NOAUTH, NOPERM at dial) are
//     configuration errors: ErrAuth per master, one attempt, through
//     lock.Create and LOCK_CONFIG alike, and not fatal while a quorum of
//     masters accepts them.
//   - Masters that are one server (another db, another name) are refused on
//     every Lock, the first included, and an Observer is told.
package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/integration/conformance"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/redlock"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(integration.LeakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// nodeTimeout is roomy: the race detector, TLS handshakes and other test
// packages share two cores with the masters, and a healthy master must not
// time out.
const nodeTimeout = 300 * time.Millisecond

// restartDelay is the restart protection's delay in the runs that turn it
// on: at least the longest ttl the conformance suite locks with (5 s).
const restartDelay = 6 * time.Second

// object is a JSON object of a configuration, as a user writes it in
// LOCK_CONFIG.
type object = map[string]any

// parseConfig parses, as LOCK_CONFIG would be, a Redis configuration with
// the given connections and lock options.
func parseConfig(t testing.TB, conns []object, lockOptions object) *config.Config {
	t.Helper()
	raw := configJSON(t, conns, lockOptions)
	cfg, err := config.Parse(raw)
	require.NoError(t, err, "config.Parse(%s)", raw)
	return cfg
}

// configJSON is the JSON of a Redis configuration.
func configJSON(t testing.TB, conns []object, lockOptions object) []byte {
	t.Helper()
	raw, err := json.Marshal(object{"type": "redis", "connections": conns, "lockOptions": lockOptions})
	require.NoError(t, err)
	return raw
}

// lockOptions is the JSON lockOptions for the conformance suite's settings:
// its retries and delay (no jitter), fencing, and the node timeout.
func lockOptions(o conformance.Opts) object {
	return object{
		"retryCount":  o.Retry,
		"retryDelay":  ms(o.Delay),
		"retryJitter": 0,
		"nodeTimeout": ms(nodeTimeout),
		"fencing":     o.Fencing,
	}
}

// ms is d in JSON's milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// hostPort is a server's host and port as a JSON connection's fields.
func hostPort(s *redistest.Server) object {
	return object{"host": "127.0.0.1", "port": s.Port()}
}

// with returns o with the fields of more added.
func with(o object, more object) object {
	out := make(object, len(o)+len(more))
	for k, v := range o {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// create is lock.Create with cfg, destroyed when t ends.
func create(t testing.TB, cfg *config.Config, namespace string, obs lock.Observer) lock.Locker {
	t.Helper()
	l, err := lock.Create(lock.Options{Namespace: namespace, LockConfig: cfg, Observer: obs})
	require.NoError(t, err, "lock.Create")
	t.Cleanup(func() { _ = l.Destroy() })
	return l
}

// do runs one command as the harness's admin.
func do(t testing.TB, s *redistest.Server, cmd string, args ...any) any {
	t.Helper()
	reply, err := s.Do(t.Context(), cmd, args...)
	require.NoError(t, err, "%s %v on %s", cmd, args, s.Addr())
	return reply
}

// flush empties every server (its keys, not its scripts nor its users).
func flush(t testing.TB, ss []*redistest.Server) {
	t.Helper()
	for _, s := range ss {
		do(t, s, "FLUSHALL")
	}
}

// allKeys lists every key of every server, as "i:key".
func allKeys(t testing.TB, ss []*redistest.Server) []string {
	t.Helper()
	var out []string
	for i, s := range ss {
		ks, err := redis.Strings(do(t, s, "KEYS", "*"), nil)
		require.NoError(t, err)
		for _, k := range ks {
			out = append(out, fmt.Sprintf("%d:%s", i, k))
		}
	}
	return out
}

// lockKeys lists the keys of every server but those kept by design (the
// restart marker, fencing counters), as "i:key".
func lockKeys(t testing.TB, ss []*redistest.Server) []string {
	t.Helper()
	var out []string
	for _, k := range allKeys(t, ss) {
		_, key, _ := strings.Cut(k, ":")
		if key != redlock.MarkerKey && !strings.HasPrefix(key, redlock.FenceKeyPrefix) {
			out = append(out, k)
		}
	}
	return out
}

// seedMarkers makes every server look as if it had kept its data for an
// hour, so that the restart protection lets it vote (a flush made it
// "rejoining" otherwise).
func seedMarkers(t testing.TB, ss []*redistest.Server) {
	t.Helper()
	for _, s := range ss {
		now, err := redis.Int64s(do(t, s, "TIME"), nil)
		require.NoError(t, err)
		do(t, s, "SET", redlock.MarkerKey, now[0]*1000-3_600_000)
	}
}

// waitUptime returns once every server has been up for d: the restart
// protection does not let a younger one vote. The wait is known from the
// servers' own uptime, so it is one sleep, not a poll.
func waitUptime(t testing.TB, ss []*redistest.Server, d time.Duration) {
	t.Helper()
	for _, s := range ss {
		info, err := s.Info(t.Context(), "server")
		require.NoError(t, err)
		secs, err := strconv.Atoi(info["uptime_in_seconds"])
		require.NoError(t, err, "uptime_in_seconds of %s", s.Addr())
		if up := time.Duration(secs) * time.Second; up < d {
			time.Sleep(d - up + time.Second)
		}
	}
}

// backend is the conformance suite's view of a Locker made by lock.Create
// with the configuration newConfig returns, over the servers ss. The
// suite's plants, key listings and flushes go through the harness's admin.
// With protect, each reset seeds the restart protection's markers.
func backend(ss []*redistest.Server, protect bool, newConfig func(t *testing.T, o conformance.Opts) *config.Config) conformance.Backend {
	return conformance.Backend{
		Masters: len(ss),
		New: func(t *testing.T, o conformance.Opts) lock.Locker {
			l, err := lock.Create(lock.Options{Namespace: o.Namespace, Observer: o.Observer, LockConfig: newConfig(t, o)})
			require.NoError(t, err, "lock.Create")
			return l
		},
		Plant: func(t *testing.T, _ lock.Locker, i int, key string, ttl time.Duration) {
			do(t, ss[i], "SET", key, "another-owner", "PX", ttl.Milliseconds())
		},
		Keys: func(t *testing.T) []string { return lockKeys(t, ss) },
		Reset: func(t *testing.T) {
			flush(t, ss)
			if protect {
				seedMarkers(t, ss)
			}
		},
	}
}

// lockError is err as a *lock.Error, failing t when it is not one.
func lockError(t testing.TB, err error) *lock.Error {
	t.Helper()
	var le *lock.Error
	require.ErrorAs(t, err, &le, "want a *lock.Error, got %T: %v", err, err)
	return le
}

// nodeError is the NodeError of master i in err, or nil.
func nodeError(err error, i int) *lock.NodeError {
	var le *lock.Error
	if !errors.As(err, &le) {
		return nil
	}
	for _, n := range le.Nodes {
		if n.Node == i {
			return n
		}
	}
	return nil
}

// neverNotHeld fails t if err says a lock is not held: a server's refusal
// (an ACL, credentials) must never read as a lost lock.
func neverNotHeld(t testing.TB, err error, call string) {
	t.Helper()
	if errors.Is(err, lock.ErrNotHeld) || errors.Is(err, lock.ErrNotHeldHere) {
		t.Errorf("%s err = %v, which matches ErrNotHeld or ErrNotHeldHere: a server's refusal read as a lost lock", call, err)
	}
}

// quick is a context for one call that must not take long.
func quick(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
