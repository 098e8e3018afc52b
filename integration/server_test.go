//go:build unix

package integration

// Tests of the redis-server process harness. They also pin facts about
// Redis 7.0 and redigo that the library relies on (error texts and types for
// TLS, AUTH, ACL, scripts, replicas, eviction): a change of Redis or Go
// version that changes one fails here first.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/leverege/lock/internal/redistest"
	"github.com/stretchr/testify/require"
)

// Texts Redis 7.0 replies with.
const (
	textNoAuth    = "NOAUTH Authentication required."
	textWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	textReadOnly  = "READONLY You can't write against a read only replica."
	textWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	// What a script gets from redis.pcall, or its caller from redis.call,
	// when the user lacks the command: an ERR, not a NOPERM.
	textScriptNoPerm = "ERR The user executing the script can't run this command or subcommand"
)

// dialWith dials s with only the given options (no admin credentials) and
// short timeouts.
func dialWith(t *testing.T, s *redistest.Server, opts ...redis.DialOption) (redis.Conn, error) {
	t.Helper()
	opts = append([]redis.DialOption{
		redis.DialConnectTimeout(2 * time.Second),
		redis.DialReadTimeout(3 * time.Second),
		redis.DialWriteTimeout(3 * time.Second),
		redis.DialTLSHandshakeTimeout(2 * time.Second),
	}, opts...)
	return redis.DialContext(t.Context(), "tcp", s.Addr(), opts...)
}

// dialTLS dials s over TLS with cfg and returns the error of the dial or, if
// the dial succeeds, of a first PING.
func dialTLS(t *testing.T, s *redistest.Server, cfg *tls.Config) (dialErr, pingErr error) {
	t.Helper()
	c, err := dialWith(t, s, redis.DialUseTLS(true), redis.DialTLSConfig(cfg))
	if err != nil {
		return err, nil
	}
	defer c.Close()
	pong, err := redis.String(redis.DoContext(c, t.Context(), "PING"))
	if err == nil && pong != "PONG" {
		err = fmt.Errorf("PING answered %q", pong)
	}
	return nil, err
}

func requireServerPong(t *testing.T, s *redistest.Server) {
	t.Helper()
	pong, err := redis.String(s.Do(t.Context(), "PING"))
	require.NoError(t, err)
	require.Equal(t, "PONG", pong)
}

func requireRedisError(t *testing.T, err error, want string) {
	t.Helper()
	var rerr redis.Error
	require.ErrorAs(t, err, &rerr, "err = %v (%T), want redis.Error %q", err, err, want)
	require.Equal(t, want, rerr.Error())
}

func infoField(t *testing.T, s *redistest.Server, section, field string) string {
	t.Helper()
	info, err := s.Info(t.Context(), section)
	require.NoError(t, err)
	v, ok := info[field]
	require.True(t, ok, "INFO %s has no %s", section, field)
	return v
}

func TestServerBasics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t)

	require.Equal(t, "127.0.0.1:"+strconv.Itoa(s.Port()), s.Addr())
	require.True(t, s.Running())
	require.NotZero(t, s.PID())
	requireServerPong(t, s)
	for param, want := range map[string]string{
		"save":                     "",
		"appendonly":               "no",
		"bind":                     "127.0.0.1",
		"repl-diskless-sync-delay": "0",
		"dir":                      s.Dir(),
		"enable-debug-command":     "no",
	} {
		got, err := redis.Strings(s.Do(ctx, "CONFIG", "GET", param))
		require.NoError(t, err)
		require.Equal(t, []string{param, want}, got)
	}
	_, err := s.Do(ctx, "DEBUG", "SLEEP", "0")
	requireRedisError(t, err, `ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.`)

	logs, err := s.Logs()
	require.NoError(t, err)
	require.Contains(t, logs, "Ready to accept connections")

	d := redistest.StartServer(t, redistest.WithDebugCommand(), redistest.WithServerArgs("--hz", "50"))
	_, err = d.Do(ctx, "DEBUG", "SLEEP", "0")
	require.NoError(t, err)
	require.Equal(t, "50", infoField(t, d, "server", "hz"))
	require.NotEqual(t, s.Port(), d.Port())
	require.NotEqual(t, s.Dir(), d.Dir())
}

func TestServerStartFailureQuotesLog(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s, err := redistest.RunServer(t.Context(), redistest.WithServerArgs("--no-such-directive", "1"))
	require.Error(t, err)
	require.Nil(t, s)
	require.Contains(t, err.Error(), "exited")
	require.Contains(t, err.Error(), "Bad directive or wrong number of arguments", "the error quotes the server's log")
	require.Less(t, time.Since(start), 5*time.Second, "a server that exits fails the start at once")
}

// TestServerMissingBinary: a missing redis-server fails (never skips) and
// says how to install it. Not parallel: it sets the environment.
func TestServerMissingBinary(t *testing.T) {
	t.Setenv(redistest.RedisServerEnv, "/nonexistent/redis-server")
	_, err := redistest.RunServer(t.Context())
	require.ErrorIs(t, err, redistest.ErrNoRedisServer)
	require.Contains(t, err.Error(), "make image")
}

// TestServerRetriesTakenPort hands the harness a port that another process
// holds: redis-server fails to bind it and the harness must retry with
// another port. Not parallel: it swaps redistest.FreePort.
func TestServerRetriesTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	orig := redistest.FreePort
	var calls atomic.Int32
	redistest.FreePort = func() (int, error) {
		if calls.Add(1) == 1 {
			return taken, nil
		}
		return orig()
	}
	defer func() { redistest.FreePort = orig }()

	s := redistest.StartServer(t)
	require.GreaterOrEqual(t, calls.Load(), int32(2), "the taken port should have been tried first")
	require.NotEqual(t, taken, s.Port())
	requireServerPong(t, s)
	logs, err := s.Logs()
	require.NoError(t, err)
	require.Contains(t, logs, "Address already in use", "the first attempt's log is kept")
}

// TestServerTLS records what a redigo client sees from a TLS-only server
// that requires client certificates.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	ca := redistest.NewCA(t, "good CA")
	wrong := redistest.NewCA(t, "wrong CA")
	s := redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertRequired))
	require.Same(t, ca, s.CA())
	require.NotNil(t, s.ClientCert())
	requireServerPong(t, s) // the harness's own connection

	t.Run("RightCAAndClientCert", func(t *testing.T) {
		dialErr, pingErr := dialTLS(t, s, ca.ClientTLSConfig(ca.ClientCert(t, "app")))
		require.NoError(t, dialErr)
		require.NoError(t, pingErr)
		// The same from the PEM text, as a configuration would give it.
		pair, err := tls.X509KeyPair([]byte(s.ClientCert().CertPEM), []byte(s.ClientCert().KeyPEM))
		require.NoError(t, err)
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM([]byte(ca.CertPEM)))
		dialErr, pingErr = dialTLS(t, s, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
		require.NoError(t, dialErr)
		require.NoError(t, pingErr)
		// "localhost" is in the server certificate too.
		cfg := ca.ClientTLSConfig(ca.ClientCert(t, "app"))
		cfg.ServerName = "localhost"
		dialErr, pingErr = dialTLS(t, s, cfg)
		require.NoError(t, dialErr)
		require.NoError(t, pingErr)
	})

	t.Run("WrongCA", func(t *testing.T) {
		// The client does not trust the server: the dial (handshake) fails.
		dialErr, _ := dialTLS(t, s, wrong.ClientTLSConfig(ca.ClientCert(t, "app")))
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, dialErr, &verr)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, dialErr, &unknown)
		require.Equal(t, "tls: failed to verify certificate: x509: certificate signed by unknown authority", dialErr.Error())
	})

	// With TLS 1.3 the client's handshake ends before the server has checked
	// the client's certificate: the dial succeeds and the server's refusal
	// (an alert) comes with the first read. When the server has closed the
	// socket before the first command is written, that write gets
	// "connection reset by peer" instead.
	requirePostHandshakeRefusal := func(t *testing.T, dialErr, pingErr error, alert string) {
		t.Helper()
		require.NoError(t, dialErr, "with TLS 1.3 the dial succeeds")
		var op *net.OpError
		require.ErrorAs(t, pingErr, &op, "PING err = %v (%T)", pingErr, pingErr)
		switch op.Op {
		case "remote error":
			require.Equal(t, "remote error: tls: "+alert, pingErr.Error())
			require.Equal(t, "tls: "+alert, op.Err.Error())
		case "write", "read":
			require.ErrorIs(t, pingErr, syscall.ECONNRESET)
			t.Logf("the first command got %q", pingErr)
		default:
			t.Fatalf("PING err = %v, Op %q", pingErr, op.Op)
		}
	}

	t.Run("NoClientCert", func(t *testing.T) {
		dialErr, pingErr := dialTLS(t, s, ca.ClientTLSConfig(nil))
		requirePostHandshakeRefusal(t, dialErr, pingErr, "certificate required")
	})

	t.Run("ClientCertFromWrongCA", func(t *testing.T) {
		dialErr, pingErr := dialTLS(t, s, ca.ClientTLSConfig(wrong.ClientCert(t, "app")))
		requirePostHandshakeRefusal(t, dialErr, pingErr, "unknown certificate authority")
	})

	t.Run("TLS12", func(t *testing.T) {
		// With TLS 1.2 the server's verdict is part of the handshake: the
		// dial fails.
		for _, c := range []struct {
			name  string
			cert  *redistest.Cert
			alert string
		}{
			{"NoClientCert", nil, "handshake failure"},
			{"ClientCertFromWrongCA", wrong.ClientCert(t, "app"), "unknown certificate authority"},
		} {
			cfg := ca.ClientTLSConfig(c.cert)
			cfg.MaxVersion = tls.VersionTLS12
			dialErr, _ := dialTLS(t, s, cfg)
			var op *net.OpError
			require.ErrorAs(t, dialErr, &op, "%s: dial err = %v (%T)", c.name, dialErr, dialErr)
			require.Equal(t, "remote error", op.Op, c.name)
			require.Equal(t, "remote error: tls: "+c.alert, dialErr.Error(), c.name)
		}
	})

	t.Run("PlainClient", func(t *testing.T) {
		c, err := dialWith(t, s) // TCP connects; the server closes on garbage
		require.NoError(t, err)
		defer c.Close()
		_, err = redis.DoContext(c, t.Context(), "PING")
		require.Error(t, err)
		t.Logf("a plain client on the TLS port: %v (%T)", err, err)
	})

	t.Run("Optional", func(t *testing.T) {
		t.Parallel()
		o := redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertOptional))
		dialErr, pingErr := dialTLS(t, o, ca.ClientTLSConfig(nil))
		require.NoError(t, dialErr)
		require.NoError(t, pingErr, "no client certificate is fine when optional")
		dialErr, pingErr = dialTLS(t, o, ca.ClientTLSConfig(wrong.ClientCert(t, "app")))
		requirePostHandshakeRefusal(t, dialErr, pingErr, "unknown certificate authority")
	})
}

// TestServerTLSClientOnPlainPort: redigo bounds the TLS handshake by its own
// timeout, not by the context; against a plain server (which waits for the
// end of a command line that never comes) the dial takes that long.
func TestServerTLSClientOnPlainPort(t *testing.T) {
	t.Parallel()
	ca := redistest.NewCA(t, "CA")
	s := redistest.StartServer(t)
	start := time.Now()
	_, err := dialWith(t, s, redis.DialUseTLS(true), redis.DialTLSConfig(ca.ClientTLSConfig(nil)),
		redis.DialTLSHandshakeTimeout(300*time.Millisecond))
	require.Error(t, err)
	require.Equal(t, "TLS handshake timeout", err.Error())
	var nerr net.Error
	require.ErrorAs(t, err, &nerr)
	require.True(t, nerr.Timeout())
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestServerAuth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t,
		redistest.WithPassword("s3cret"),
		redistest.WithACLUser("reader", "on", ">rpw", "~*", "+get", "+ping"),
	)
	user, pass := s.Admin()
	require.Equal(t, "", user)
	require.Equal(t, "s3cret", pass)
	requireServerPong(t, s)

	c, err := dialWith(t, s)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Do("PING")
	requireRedisError(t, err, textNoAuth)
	_, err = c.Do("AUTH", "wrong")
	requireRedisError(t, err, textWrongPass)

	// redigo sends AUTH while dialling: the dial fails with the reply.
	_, err = dialWith(t, s, redis.DialPassword("wrong"))
	requireRedisError(t, err, textWrongPass)

	r, err := dialWith(t, s, redis.DialUsername("reader"), redis.DialPassword("rpw"))
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Do("GET", "k")
	require.NoError(t, err)
	_, err = r.Do("SET", "k", "v")
	requireRedisError(t, err, "NOPERM this user has no permissions to run the 'set' command")

	// A user made at run time.
	require.NoError(t, s.SetUser(ctx, "late", "on", ">lpw", "~*", "+ping"))
	l, err := dialWith(t, s, redis.DialUsername("late"), redis.DialPassword("lpw"))
	require.NoError(t, err)
	defer l.Close()
	_, err = l.Do("PING")
	require.NoError(t, err)

	t.Run("DefaultUserOff", func(t *testing.T) {
		t.Parallel()
		d := redistest.StartServer(t, redistest.WithDefaultUserOff(), redistest.WithACLUser("app", "on", ">apw", "~*", "+@all"))
		user, pass := d.Admin()
		require.Equal(t, redistest.AdminUser, user)
		require.NotEmpty(t, pass)
		requireServerPong(t, d)
		c, err := dialWith(t, d)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Do("PING")
		requireRedisError(t, err, textNoAuth)
		_, err = c.Do("AUTH", "anything")
		requireRedisError(t, err, textWrongPass)
		_, err = c.Do("AUTH", "app", "apw")
		require.NoError(t, err)
		_, err = c.Do("PING")
		require.NoError(t, err)
	})
}

// TestServerACLScript records what a script gets when the user running it
// lacks a command the script calls. Redis checks the ACL of every command a
// script calls; the denial is an ERR (not NOPERM).
func TestServerACLScript(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t, redistest.WithACLUser("scripter", "on", ">spw", "~*", "+evalsha", "+eval", "+script|load"))
	_, err := s.Do(ctx, "SET", "str", "val")
	require.NoError(t, err)
	_, err = s.Do(ctx, "RPUSH", "list", "x")
	require.NoError(t, err)

	sc, err := dialWith(t, s, redis.DialUsername("scripter"), redis.DialPassword("spw"))
	require.NoError(t, err)
	defer sc.Close()
	_, err = sc.Do("GET", "str")
	requireRedisError(t, err, "NOPERM this user has no permissions to run the 'get' command")

	// run runs src as the scripter, through redigo's Script (EVALSHA, then
	// EVAL when the script is not cached), and as the admin.
	run := func(src, key string) (scripter, admin any, scripterErr, adminErr error) {
		script := redis.NewScript(1, src)
		scripter, scripterErr = script.DoContext(ctx, sc, key)
		ac, err := s.Dial(ctx)
		require.NoError(t, err)
		defer ac.Close()
		admin, adminErr = script.DoContext(ctx, ac, key)
		return
	}

	t.Run("PcallReturnsTheErrorTable", func(t *testing.T) {
		const src = `local v = redis.pcall("GET", KEYS[1]) if type(v) == "table" and v.err then return v end return v`
		_, _, err, _ := run(src, "str")
		requireRedisError(t, err, textScriptNoPerm)
		_, admin, _, err := run(src, "str")
		require.NoError(t, err)
		require.Equal(t, []byte("val"), admin)
		_, _, _, err = run(src, "list")
		requireRedisError(t, err, textWrongType)
		// Also through SCRIPT LOAD and EVALSHA, as the user is allowed to.
		sha, err := redis.String(sc.Do("SCRIPT", "LOAD", src))
		require.NoError(t, err)
		_, err = sc.Do("EVALSHA", sha, 1, "str")
		requireRedisError(t, err, textScriptNoPerm)
	})

	t.Run("ErrField", func(t *testing.T) {
		// v.err itself, returned as a string.
		const src = `local v = redis.pcall("GET", KEYS[1]) if type(v) == "table" and v.err then return "err=" .. v.err end return v`
		scripter, _, err, _ := run(src, "str")
		require.NoError(t, err)
		require.Equal(t, []byte("err="+textScriptNoPerm), scripter)
		_, admin, _, err := run(src, "list")
		require.NoError(t, err)
		require.Equal(t, []byte("err="+textWrongType), admin)
	})

	t.Run("Call", func(t *testing.T) {
		const src = `return redis.call("GET", KEYS[1])`
		sha := redis.NewScript(1, src).Hash()
		suffix := " script: " + sha + ", on @user_script:1."
		_, _, err, _ := run(src, "str")
		requireRedisError(t, err, textScriptNoPerm+suffix)
		_, _, _, err = run(src, "list")
		requireRedisError(t, err, textWrongType+suffix)
	})
}

// TestServerReplication: a replica syncs, answers writes with READONLY,
// and is promoted; the old master is demoted to a replica of it.
func TestServerReplication(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := redistest.StartServer(t)
	r := redistest.StartServer(t, redistest.WithReplicaOf(m))
	require.Equal(t, "up", infoField(t, r, "replication", "master_link_status"))
	require.Equal(t, "slave", infoField(t, r, "replication", "role"))
	require.Equal(t, "1", infoField(t, m, "replication", "connected_slaves"))

	_, err := m.Do(ctx, "SET", "k", "v")
	require.NoError(t, err)
	require.NoError(t, r.WaitReplicaSynced(ctx))
	v, err := redis.String(r.Do(ctx, "GET", "k"))
	require.NoError(t, err)
	require.Equal(t, "v", v)
	replid := infoField(t, m, "replication", "master_replid")
	require.Equal(t, replid, infoField(t, r, "replication", "master_replid"), "a replica shares its master's replid")

	_, err = r.Do(ctx, "SET", "k", "w")
	requireRedisError(t, err, textReadOnly)
	write := redis.NewScript(1, `return redis.call("SET", KEYS[1], "w")`)
	_, err = write.Do(mustDial(t, r), "k") // EVALSHA, then EVAL
	requireRedisError(t, err, textReadOnly+" script: "+write.Hash()+", on @user_script:1.")
	_, err = r.Do(ctx, "EVALSHA", write.Hash(), 1, "k")
	requireRedisError(t, err, textReadOnly+" script: "+write.Hash()+", on @user_script:1.")
	t.Logf("READONLY for EVALSHA of a writing script: %v", err)
	pwrite := redis.NewScript(1, `local v = redis.pcall("SET", KEYS[1], "w") if type(v) == "table" and v.err then return "err=" .. v.err end return v`)
	got, err := redis.String(pwrite.Do(mustDial(t, r), "k"))
	require.NoError(t, err)
	require.Equal(t, "err="+textReadOnly, got)

	require.NoError(t, r.Promote(ctx))
	info, err := r.Info(ctx, "replication")
	require.NoError(t, err)
	require.Equal(t, "master", info["role"])
	require.NotEqual(t, replid, info["master_replid"], "a promoted replica gets a new replid")
	require.Equal(t, replid, info["master_replid2"], "and keeps the old one as replid2")
	t.Logf("promoted: master_replid %s, master_replid2 %s, second_repl_offset %s", info["master_replid"], info["master_replid2"], info["second_repl_offset"])
	_, err = r.Do(ctx, "SET", "k", "promoted")
	require.NoError(t, err)
	require.Error(t, r.WaitReplicaSynced(ctx), "a master is not a replica")

	// Failover: the old master follows the new one and refuses writes.
	require.NoError(t, m.ReplicaOf(ctx, r))
	require.NoError(t, m.WaitReplicaSynced(ctx))
	v, err = redis.String(m.Do(ctx, "GET", "k"))
	require.NoError(t, err)
	require.Equal(t, "promoted", v)
	_, err = m.Do(ctx, "SET", "k", "x")
	requireRedisError(t, err, textReadOnly)
	require.Equal(t, infoField(t, r, "replication", "master_replid"), infoField(t, m, "replication", "master_replid"))
}

func mustDial(t *testing.T, s *redistest.Server) redis.Conn {
	t.Helper()
	c, err := s.Dial(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestServerReplicationTLSAndACL: a replica of a TLS master with the
// default user off inherits the TLS setup and authenticates as the master's
// admin.
func TestServerReplicationTLSAndACL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ca := redistest.NewCA(t, "CA")
	m := redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertRequired), redistest.WithDefaultUserOff())
	r := redistest.StartServer(t, redistest.WithReplicaOf(m), redistest.WithPassword("replica-pw"))
	require.Same(t, ca, r.CA())
	_, err := m.Do(ctx, "SET", "k", "v")
	require.NoError(t, err)
	require.NoError(t, r.WaitReplicaSynced(ctx))
	v, err := redis.String(r.Do(ctx, "GET", "k"))
	require.NoError(t, err)
	require.Equal(t, "v", v)
	require.Contains(t, r.Args(), "--tls-replication")
	require.Contains(t, r.Args(), "--masteruser")
}

// TestServerRestartIdentity records what a restart keeps: without
// persistence nothing (new run_id, new replid, no keys); with AOF or RDB the
// keys, but not the replid.
func TestServerRestartIdentity(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		opts      []redistest.ServerOption
		keepsKeys bool
	}{
		{"NoPersistence", nil, false},
		{"AOF", []redistest.ServerOption{redistest.WithAOF()}, true},
		{"RDB", []redistest.ServerOption{redistest.WithRDB()}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := redistest.StartServer(t, c.opts...)
			addr, pid := s.Addr(), s.PID()
			runID := infoField(t, s, "server", "run_id")
			replid := infoField(t, s, "replication", "master_replid")
			_, err := s.Do(ctx, "SET", "k", "v")
			require.NoError(t, err)

			require.NoError(t, s.Restart(ctx))
			require.Equal(t, addr, s.Addr())
			require.NotEqual(t, pid, s.PID())
			require.NotEqual(t, runID, infoField(t, s, "server", "run_id"), "a restart gets a new run_id")
			// Redis 7.0 gives a master a new replid at every start, even
			// one that loads an RDB or AOF holding the old one.
			require.NotEqual(t, replid, infoField(t, s, "replication", "master_replid"))
			n, err := redis.Int(s.Do(ctx, "EXISTS", "k"))
			require.NoError(t, err)
			if !c.keepsKeys {
				require.Zero(t, n)
				return
			}
			require.Equal(t, 1, n, "the key is loaded back")
			if c.name == "AOF" {
				// appendfsync always: a SIGKILL loses no acknowledged write.
				_, err := s.Do(ctx, "SET", "k2", "v")
				require.NoError(t, err)
				require.NoError(t, s.Kill(ctx))
				require.NoError(t, s.Start(ctx))
				n, err := redis.Int(s.Do(ctx, "EXISTS", "k", "k2"))
				require.NoError(t, err)
				require.Equal(t, 2, n)
			}
		})
	}
}

// TestServerEviction: under volatile-lru a key with a ttl is evicted when
// memory runs out; under noeviction writes fail instead.
func TestServerEviction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	value := strings.Repeat("x", 1024)

	s := redistest.StartServer(t, redistest.WithMaxMemory("3mb", "volatile-lru"))
	require.Equal(t, "volatile-lru", infoField(t, s, "memory", "maxmemory_policy"))
	require.Equal(t, "3145728", infoField(t, s, "memory", "maxmemory"))
	_, err := s.Do(ctx, "SET", "lock", "token", "PX", 60000)
	require.NoError(t, err)
	// Redis's LRU clock ticks once a second: keys written in the same
	// second are equally old, and which of them is evicted is then a
	// lottery (the key survived 10000 writes in one run of four). A lock
	// held for a while is older than the writes that fill the memory: wait
	// until it is (OBJECT IDLETIME does not touch the key, nor does EXISTS).
	for i := 0; ; i++ {
		idle, err := redis.Int(s.Do(ctx, "OBJECT", "IDLETIME", "lock"))
		require.NoError(t, err)
		if idle >= 1 {
			break
		}
		require.Less(t, i, 300, "OBJECT IDLETIME stays 0")
		time.Sleep(10 * time.Millisecond)
	}

	c := mustDial(t, s)
	deadline := time.Now().Add(10 * time.Second)
	evicted, written := false, 0
	for batch := 0; batch < 40 && !evicted && time.Now().Before(deadline); batch++ {
		for range 250 {
			require.NoError(t, c.Send("SET", "filler:"+strconv.Itoa(written), value, "PX", 60000))
			written++
		}
		require.NoError(t, c.Send("EXISTS", "lock"))
		replies, err := redis.Values(c.Do(""))
		require.NoError(t, err)
		for _, r := range replies[:len(replies)-1] {
			require.Equal(t, "OK", r, "a write under volatile-lru")
		}
		n, err := redis.Int(replies[len(replies)-1], nil)
		require.NoError(t, err)
		evicted = n == 0
	}
	require.True(t, evicted, "the lock key should be evicted after %d 1 KB keys", written)
	n, err := strconv.Atoi(infoField(t, s, "stats", "evicted_keys"))
	require.NoError(t, err)
	require.Positive(t, n)
	t.Logf("volatile-lru: the key was evicted after %d keys of 1 KB; evicted_keys %d", written, n)

	t.Run("NoEviction", func(t *testing.T) {
		t.Parallel()
		s := redistest.StartServer(t, redistest.WithMaxMemory("3mb", "noeviction"))
		require.Equal(t, "noeviction", infoField(t, s, "memory", "maxmemory_policy"))
		c := mustDial(t, s)
		var werr error
		for i := 0; i < 10000 && werr == nil; i++ {
			_, werr = c.Do("SET", "filler:"+strconv.Itoa(i), value, "PX", 60000)
		}
		requireRedisError(t, werr, "OOM command not allowed when used memory > 'maxmemory'.")
		require.Equal(t, "0", infoField(t, s, "stats", "evicted_keys"))
	})
}

func TestServerPauseResume(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t)
	require.NoError(t, s.Pause(ctx))
	require.True(t, s.Paused())
	require.False(t, s.Running())
	require.NoError(t, s.Pause(ctx), "pausing a paused server does nothing")

	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := s.Do(dctx, "PING")
	cancel()
	// The context or redigo's read deadline (set from the context) ends it.
	var timeout net.Error
	require.ErrorAs(t, err, &timeout, "a paused server answers nothing")
	require.True(t, timeout.Timeout(), "err = %v, want a timeout", err)

	require.NoError(t, s.Resume(ctx))
	require.True(t, s.Running())
	require.NoError(t, s.Resume(ctx), "Resume is idempotent")
	requireServerPong(t, s)

	t.Run("CloseWhilePaused", func(t *testing.T) {
		p, err := redistest.RunServer(t.Context())
		require.NoError(t, err)
		pid, dir := p.PID(), p.Dir()
		require.NoError(t, p.Pause(t.Context()))
		require.NoError(t, p.Close())
		require.NoError(t, p.Close(), "Close is idempotent")
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the process is reaped")
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist, "RunServer's directory is removed")
		require.Error(t, p.Start(t.Context()), "a closed server does not start")
	})

	// Left paused: StartServer's cleanup resumes and kills it.
	require.NoError(t, s.Pause(ctx))
}

func TestServerKillStopRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t)
	addr, pid := s.Addr(), s.PID()
	_, err := s.Do(ctx, "SET", "k", "v")
	require.NoError(t, err)

	require.NoError(t, s.Kill(ctx))
	require.False(t, s.Running())
	require.Zero(t, s.PID())
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "a killed server is reaped")
	_, err = s.Do(ctx, "PING")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.NoError(t, s.Kill(ctx), "killing a killed server does nothing")
	require.Error(t, s.Pause(ctx), "a killed server cannot be paused")

	require.NoError(t, s.Start(ctx))
	require.Equal(t, addr, s.Addr())
	require.NotEqual(t, pid, s.PID())
	requireServerPong(t, s)
	n, err := redis.Int(s.Do(ctx, "DBSIZE"))
	require.NoError(t, err)
	require.Zero(t, n, "no persistence: a killed server comes back empty")
	require.NoError(t, s.Start(ctx), "starting a running server does nothing")

	pid = s.PID()
	require.NoError(t, s.Stop(ctx))
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	require.NoError(t, s.Stop(ctx), "stopping a stopped server does nothing")
	require.NoError(t, s.Start(ctx))
	requireServerPong(t, s)

	// A paused server stops cleanly too (resumed first).
	require.NoError(t, s.Pause(ctx))
	require.NoError(t, s.Restart(ctx))
	requireServerPong(t, s)
	logs, err := s.Logs()
	require.NoError(t, err)
	require.Equal(t, 4, strings.Count(logs, "Ready to accept connections"), "the log covers every start")
	require.Contains(t, logs, "Received SIGTERM scheduling shutdown")
}

// TestServerRestartPortTaken: a server whose port was taken while it was
// down fails to start, saying so.
func TestServerRestartPortTaken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t)
	require.NoError(t, s.Kill(ctx))
	l, err := net.Listen("tcp", s.Addr())
	require.NoError(t, err)
	err = s.Start(ctx)
	require.NoError(t, l.Close())
	require.Error(t, err)
	require.Contains(t, err.Error(), "was taken by another process")
	require.False(t, s.Running())
	require.NoError(t, s.Start(ctx), "the port is free again")
	requireServerPong(t, s)
}

func TestServerOptionErrors(t *testing.T) {
	t.Parallel()
	for _, opt := range []redistest.ServerOption{
		redistest.WithTLS(nil, redistest.ClientCertRequired),
		redistest.WithTLS(redistest.NewCA(t, "CA"), "maybe"),
		redistest.WithReplicaOf(nil),
	} {
		s, err := redistest.RunServer(t.Context(), opt)
		require.Error(t, err)
		require.Nil(t, s)
	}
}
