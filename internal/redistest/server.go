//go:build unix

package redistest

// redis-server processes on 127.0.0.1, configured as production masters are
// (TLS, passwords, ACL users, replicas, persistence, eviction). See the
// package doc, "redis-server processes".

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

const (
	// RedisServerEnv names the environment variable that may give the path
	// of the redis-server binary [StartServer] runs; by default it is looked
	// up on PATH, then at /usr/bin/redis-server.
	RedisServerEnv = "LOCK_REDIS_SERVER"

	// AdminUser is the ACL user the harness creates, with every permission,
	// on a server started with [WithDefaultUserOff], and authenticates as.
	AdminUser = "harness-admin"

	// ServerLogFile is the name of the file, in [Server.Dir], that receives
	// redis-server's output (its log), across restarts.
	ServerLogFile = "redis-server.log"

	defaultRedisServer = "/usr/bin/redis-server"

	serverReadyTimeout = 10 * time.Second // first PING after a start
	serverStopTimeout  = 15 * time.Second // SIGTERM to exit (a master may wait 10 s for lagging replicas)
	serverKillTimeout  = 10 * time.Second // SIGKILL to reaped
	replicaSyncTimeout = 10 * time.Second // to master_link_status:up, or an offset
	serverPollInterval = 10 * time.Millisecond
	serverProbeTimeout = 500 * time.Millisecond
	serverLogTail      = 2048 // bytes of the log quoted in errors
)

// ErrNoRedisServer is returned (wrapped) by [RunServer], and reported by
// [StartServer], when the redis-server binary cannot be found.
var ErrNoRedisServer = errors.New("redis-server binary not found")

// errPortTaken marks a start that failed because another process holds the
// port; the first start then tries another one.
var errPortTaken = errors.New("port taken by another process")

// RedisServerBinary returns the redis-server binary the harness runs:
// $LOCK_REDIS_SERVER, else redis-server on PATH, else /usr/bin/redis-server.
// The error wraps [ErrNoRedisServer] and says how to install it.
func RedisServerBinary() (string, error) {
	if p := os.Getenv(RedisServerEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("integration: %w: $%s=%q: %v; `make image` installs redis-server (apt-get install redis-server)", ErrNoRedisServer, RedisServerEnv, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(defaultRedisServer); err == nil {
		return defaultRedisServer, nil
	}
	return "", fmt.Errorf("integration: %w on PATH nor at %s; `make image` installs it (apt-get install redis-server), or set $%s", ErrNoRedisServer, defaultRedisServer, RedisServerEnv)
}

// ---------------------------------------------------------------------------
// Options

// TLSClientAuth is redis-server's tls-auth-clients setting: whether TLS
// clients must present a certificate signed by the server's CA.
type TLSClientAuth string

const (
	// ClientCertRequired: a client without a valid certificate is refused
	// (tls-auth-clients yes, the Redis default).
	ClientCertRequired TLSClientAuth = "yes"
	// ClientCertOptional: a client may present no certificate, but one it
	// presents must verify (tls-auth-clients optional).
	ClientCertOptional TLSClientAuth = "optional"
	// ClientCertIgnored: no certificate is asked for (tls-auth-clients no).
	ClientCertIgnored TLSClientAuth = "no"
)

type serverOptions struct {
	args       []string
	tlsCA      *CA
	tlsAuth    TLSClientAuth
	password   string
	users      [][]string // name, rules...
	defaultOff bool
	replicaOf  *Server
	aof, rdb   bool
	maxmemory  string
	policy     string
	debug      bool
	err        error
}

// ServerOption configures [StartServer] and [RunServer].
type ServerOption func(*serverOptions)

// WithServerArgs appends redis-server arguments after all the others (later
// arguments override earlier ones in Redis), for example
//
//	integration.WithServerArgs("--hz", "100")
func WithServerArgs(args ...string) ServerOption {
	return func(o *serverOptions) { o.args = append(o.args, args...) }
}

// WithTLS makes the server TLS-only (--port 0 --tls-port PORT) with a
// certificate that ca issues (for IP 127.0.0.1 and localhost), verifying
// client certificates against ca as auth says. The harness's own
// connections ([Server.Dial], [Server.Do], readiness) present a client
// certificate from ca ([Server.ClientCert]).
func WithTLS(ca *CA, auth TLSClientAuth) ServerOption {
	return func(o *serverOptions) {
		switch auth {
		case ClientCertRequired, ClientCertOptional, ClientCertIgnored:
		default:
			o.err = fmt.Errorf("integration: WithTLS: unknown client auth %q", auth)
			return
		}
		if ca == nil {
			o.err = errors.New("integration: WithTLS: nil CA")
			return
		}
		o.tlsCA, o.tlsAuth = ca, auth
	}
}

// WithPassword sets requirepass, the default user's password; the harness
// authenticates with it. Without it (and without [WithDefaultUserOff]) the
// default user needs no password, as in a stock redis-server.
func WithPassword(password string) ServerOption {
	return func(o *serverOptions) { o.password = password }
}

// WithACLUser adds an ACL user on the command line (--user name rules...),
// with rules as ACL SETUSER takes them, for example
//
//	integration.WithACLUser("locker", "on", ">secret", "~lock:*", "+eval", "+evalsha", "+script|load")
//
// Users given so come back after [Server.Restart]; users made at run time
// with [Server.SetUser] do not.
func WithACLUser(name string, rules ...string) ServerOption {
	return func(o *serverOptions) {
		o.users = append(o.users, append([]string{name}, rules...))
	}
}

// WithDefaultUserOff turns the default user off (--user default off), as
// managed services with ACLs do: a connection must AUTH as a named user. The
// harness then adds the user [AdminUser] with every permission and a random
// password ([Server.Admin]) for its own connections.
func WithDefaultUserOff() ServerOption {
	return func(o *serverOptions) { o.defaultOff = true }
}

// WithReplicaOf makes the server a replica of master (--replicaof 127.0.0.1
// PORT, with master's admin credentials as masteruser/masterauth, and TLS
// replication when master uses TLS; a replica without [WithTLS] of its own
// then takes master's CA and client-auth setting). [StartServer] returns once
// INFO replication shows master_link_status:up, that is once the initial sync
// is done. Every server has repl-diskless-sync-delay 0, so that the sync
// starts at once.
func WithReplicaOf(master *Server) ServerOption {
	return func(o *serverOptions) {
		if master == nil {
			o.err = errors.New("integration: WithReplicaOf: nil master")
			return
		}
		o.replicaOf = master
	}
}

// WithAOF turns on AOF persistence in the server's directory with
// appendfsync always: every write acknowledged is on disk, and
// [Server.Restart] (or a Kill and Start) loads it back.
func WithAOF() ServerOption {
	return func(o *serverOptions) { o.aof = true }
}

// WithRDB turns on RDB snapshots in the server's directory (save 3600 1):
// a clean [Server.Stop] or SHUTDOWN writes dump.rdb and the next start loads
// it; SAVE or BGSAVE write it at once. A [Server.Kill] loses the writes since
// the last snapshot.
func WithRDB() ServerOption {
	return func(o *serverOptions) { o.rdb = true }
}

// WithMaxMemory sets maxmemory (in redis-server's notation: "3mb", "100kb",
// bytes) and maxmemory-policy (noeviction, allkeys-lru, volatile-lru, ...).
func WithMaxMemory(limit, policy string) ServerOption {
	return func(o *serverOptions) { o.maxmemory, o.policy = limit, policy }
}

// WithDebugCommand allows the DEBUG command (--enable-debug-command yes),
// e.g. DEBUG SLEEP or DEBUG SET-ACTIVE-EXPIRE in tests.
func WithDebugCommand() ServerOption {
	return func(o *serverOptions) { o.debug = true }
}

// ---------------------------------------------------------------------------
// Server

// Server is one redis-server process on 127.0.0.1, on a port fixed for its
// life, in a directory of its own. Lifecycle methods (Start, Stop, Kill,
// Pause, Resume, Promote, ReplicaOf, Close) are serialised; Dial, Do and Info
// may be called concurrently with anything.
type Server struct {
	bin     string
	dir     string
	ownDir  bool // RunServer made dir: Close removes it
	port    int
	addr    string
	args    []string
	tls     *serverTLS // nil: plain TCP
	user    string     // admin user; "" is the default user
	pass    string     // admin password; "" for none
	replica *Server    // the master given to WithReplicaOf, or nil

	mu     sync.Mutex
	state  State
	proc   *process
	master *Server // what the server replicates from, as far as the harness knows
}

type serverTLS struct {
	ca     *CA
	auth   TLSClientAuth
	server *Cert
	admin  *Cert
	config *tls.Config // the admin's client configuration
}

// process is one run of redis-server; exited is closed once it has been
// reaped, after which err holds what Wait returned.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// StartServer starts a redis-server for t (see [RunServer]) in a directory of
// t.TempDir() and registers [Server.Close] with t.Cleanup; it fails t if the
// server cannot be started, quoting the server's log, and also when the
// redis-server binary is missing (never skips).
func StartServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	s, err := runServer(t.Context(), t.TempDir(), false, opts)
	if err != nil {
		t.Fatalf("integration: StartServer: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("integration: %v", err)
		}
	})
	return s
}

// RunServer starts one redis-server process listening on 127.0.0.1 only, on a
// free port chosen by the harness (if another process takes the port before
// redis-server binds it, it tries another), in a new temporary directory,
// and returns once it answers PING (as the admin, over TLS if configured)
// and, for a replica, once its link to the master is up. The server always
// runs with --save "" --appendonly no unless [WithAOF] or [WithRDB] ask for
// persistence. The caller must call [Server.Close], which also removes the
// directory.
func RunServer(ctx context.Context, opts ...ServerOption) (*Server, error) {
	dir, err := os.MkdirTemp("", "redis-server-")
	if err != nil {
		return nil, fmt.Errorf("integration: RunServer: %w", err)
	}
	s, err := runServer(ctx, dir, true, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("integration: RunServer: %w", err)
	}
	return s, nil
}

func runServer(ctx context.Context, dir string, ownDir bool, opts []ServerOption) (*Server, error) {
	var o serverOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	bin, err := RedisServerBinary()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, ownDir: ownDir, replica: o.replicaOf}
	if o.tlsCA == nil && o.replicaOf != nil && o.replicaOf.tls != nil {
		o.tlsCA, o.tlsAuth = o.replicaOf.tls.ca, o.replicaOf.tls.auth
	}
	if o.tlsCA != nil {
		if s.tls, err = newServerTLS(dir, o.tlsCA, o.tlsAuth); err != nil {
			return nil, err
		}
	}
	switch {
	case o.defaultOff:
		s.user, s.pass = AdminUser, randomPassword()
	case o.password != "":
		s.pass = o.password
	}

	var lastErr error
	for range portAttempts {
		port, err := ReservePort()
		if err != nil {
			return nil, err
		}
		s.port = port
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = s.buildArgs(o)
		s.mu.Lock()
		err = s.startLocked(ctx)
		s.mu.Unlock()
		if err == nil {
			return s, nil
		}
		ReleasePort(port)
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no usable port after %d attempts: %w", portAttempts, lastErr)
}

func newServerTLS(dir string, ca *CA, auth TLSClientAuth) (*serverTLS, error) {
	server, err := ca.issue(dir, "server", "localhost", true)
	if err != nil {
		return nil, fmt.Errorf("issue the server certificate: %w", err)
	}
	admin, err := ca.issue(dir, "admin", AdminUser, false)
	if err != nil {
		return nil, fmt.Errorf("issue the admin client certificate: %w", err)
	}
	// A copy of the CA certificate in the server's own directory: the server
	// must restart with it even if the CA's directory is gone.
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte(ca.CertPEM), 0o644); err != nil {
		return nil, err
	}
	return &serverTLS{ca: ca, auth: auth, server: server, admin: admin, config: ca.ClientTLSConfig(admin)}, nil
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// buildArgs returns the server's command line, port included: the base
// settings first, then each option's, then WithServerArgs.
func (s *Server) buildArgs(o serverOptions) []string {
	port := strconv.Itoa(s.port)
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "", // stdout, which is ServerLogFile
		"--save", "",
		"--appendonly", "no",
		"--repl-diskless-sync-delay", "0",
	}
	if s.tls == nil {
		args = append(args, "--port", port)
	} else {
		args = append(args,
			"--port", "0", "--tls-port", port,
			"--tls-cert-file", s.tls.server.CertFile,
			"--tls-key-file", s.tls.server.KeyFile,
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.crt"),
			"--tls-auth-clients", string(s.tls.auth),
		)
	}
	if o.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	if o.rdb {
		args = append(args, "--save", "3600 1")
	}
	if o.password != "" {
		args = append(args, "--requirepass", o.password)
	}
	for _, u := range o.users {
		args = append(args, "--user")
		args = append(args, u...)
	}
	if o.defaultOff {
		args = append(args, "--user", "default", "off")
		args = append(args, "--user", AdminUser, "on", ">"+s.pass, "~*", "&*", "+@all")
	}
	if m := o.replicaOf; m != nil {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(m.port))
		if m.user != "" {
			args = append(args, "--masteruser", m.user)
		}
		if m.pass != "" {
			args = append(args, "--masterauth", m.pass)
		}
		if m.tls != nil {
			args = append(args, "--tls-replication", "yes")
		}
	}
	if o.maxmemory != "" {
		args = append(args, "--maxmemory", o.maxmemory)
	}
	if o.policy != "" {
		args = append(args, "--maxmemory-policy", o.policy)
	}
	if o.debug {
		args = append(args, "--enable-debug-command", "yes")
	}
	return append(args, o.args...)
}

// startLocked starts the process (s.mu held) and waits until it is ready.
func (s *Server) startLocked(ctx context.Context) error {
	logPath := filepath.Join(s.dir, ServerLogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return s.errorf("start", err)
	}
	var logOff int64
	if fi, err := logf.Stat(); err == nil {
		logOff = fi.Size()
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf // a file: no copying goroutines
	cmd.SysProcAttr = serverProcAttr()
	err = cmd.Start()
	_ = logf.Close() // the child has its own descriptor
	if err != nil {
		return s.errorf("start", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc, s.state, s.master = p, StateRunning, s.replica

	err = s.waitReady(ctx, p, logOff)
	if err == nil && s.master != nil && s.master.Running() {
		if err = s.waitLinkUp(ctx); err != nil {
			err = fmt.Errorf("%w; log:\n%s", err, s.logTail(logOff))
		}
	}
	if err != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited // SIGKILL of a child we own: prompt
		s.state = StateStopped
		return s.errorf("start", err)
	}
	return nil
}

// waitReady polls PING until the process answers it on s.addr, then checks
// with INFO server that the answer came from this process and not from one
// that took the port first.
func (s *Server) waitReady(ctx context.Context, p *process, logOff int64) error {
	ctx, cancel := context.WithTimeout(ctx, serverReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-p.exited:
			tail := s.logTail(logOff)
			err := fmt.Errorf("redis-server exited (%v) before answering PING; log:\n%s", p.err, tail)
			if strings.Contains(tail, "Address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, serverProbeTimeout)
		pid, err := s.probe(pctx)
		pcancel()
		if err == nil && pid == p.cmd.Process.Pid {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%w: PING answered by process %d, not %d", errPortTaken, pid, p.cmd.Process.Pid)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING: %w (last error: %v); log:\n%s", ctx.Err(), lastErr, s.logTail(logOff))
		case <-p.exited:
		case <-time.After(serverPollInterval):
		}
	}
}

// probe runs PING and returns the process_id of INFO server.
func (s *Server) probe(ctx context.Context) (int, error) {
	conn, err := s.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	pong, err := redis.String(redis.DoContext(conn, ctx, "PING"))
	if err != nil {
		return 0, err
	}
	if pong != "PONG" {
		return 0, fmt.Errorf("PING answered %q", pong)
	}
	info, err := redis.String(redis.DoContext(conn, ctx, "INFO", "server"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(parseInfo(info)["process_id"])
}

// logTail returns the end of the log written since offset off.
func (s *Server) logTail(off int64) string {
	b, err := os.ReadFile(filepath.Join(s.dir, ServerLogFile))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if off <= int64(len(b)) {
		b = b[off:]
	}
	if len(b) > serverLogTail {
		b = b[len(b)-serverLogTail:]
	}
	return strings.TrimSpace(string(b))
}

// Addr returns "127.0.0.1:PORT"; it is the same across Stop, Kill and Start.
func (s *Server) Addr() string { return s.addr }

// Port returns the server's port on 127.0.0.1 (its TLS port with [WithTLS]).
func (s *Server) Port() int { return s.port }

// Dir returns the server's directory: its working directory and --dir
// (dump.rdb, the AOF), and the home of [ServerLogFile] and, with TLS, of its
// certificates.
func (s *Server) Dir() string { return s.dir }

// Args returns the redis-server arguments the server runs with.
func (s *Server) Args() []string { return append([]string(nil), s.args...) }

// Admin returns the credentials the harness authenticates with: user is ""
// for the default user, password is "" when no AUTH is sent.
func (s *Server) Admin() (user, password string) { return s.user, s.pass }

// CA returns the CA of a TLS server ([WithTLS]), or nil.
func (s *Server) CA() *CA {
	if s.tls == nil {
		return nil
	}
	return s.tls.ca
}

// ClientCert returns the client certificate the harness presents to a TLS
// server, or nil.
func (s *Server) ClientCert() *Cert {
	if s.tls == nil {
		return nil
	}
	return s.tls.admin
}

// TLSConfig returns a new copy of the client configuration the harness dials
// a TLS server with (it trusts the server's CA and presents
// [Server.ClientCert]), or nil for a plain server.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.config.Clone()
}

// DialOptions returns the redigo options of the harness's own connections:
// connect timeout 2s, read and write timeouts 3s, TLS as configured (with a
// 2s handshake timeout), and the admin credentials.
func (s *Server) DialOptions() []redis.DialOption {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(dialConnectTimeout),
		redis.DialReadTimeout(dialIOTimeout),
		redis.DialWriteTimeout(dialIOTimeout),
	}
	if s.tls != nil {
		// redigo bounds the handshake by its own timeout (10s by default),
		// not by the context: a TLS client on a plain port waits that long.
		opts = append(opts, redis.DialUseTLS(true), redis.DialTLSConfig(s.tls.config),
			redis.DialTLSHandshakeTimeout(dialConnectTimeout))
	}
	if s.user != "" {
		opts = append(opts, redis.DialUsername(s.user))
	}
	if s.pass != "" {
		opts = append(opts, redis.DialPassword(s.pass))
	}
	return opts
}

// Dial opens a redigo connection as the admin (see [Server.DialOptions]).
// The caller closes it.
func (s *Server) Dial(ctx context.Context) (redis.Conn, error) {
	return redis.DialContext(ctx, "tcp", s.addr, s.DialOptions()...)
}

// Do runs one command as the admin on a fresh connection, bounded by ctx and
// the Dial timeouts. A Redis error reply is returned as the error
// (redis.Error).
func (s *Server) Do(ctx context.Context, cmd string, args ...any) (any, error) {
	conn, err := s.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.DoContext(conn, ctx, cmd, args...)
}

// Info returns the fields of INFO section ("replication", "memory",
// "stats", ...; "" for the default set) as a map: "master_link_status" to
// "up", and so on.
func (s *Server) Info(ctx context.Context, section string) (map[string]string, error) {
	args := []any{}
	if section != "" {
		args = append(args, section)
	}
	info, err := redis.String(s.Do(ctx, "INFO", args...))
	if err != nil {
		return nil, err
	}
	return parseInfo(info), nil
}

func parseInfo(info string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// SetUser runs ACL SETUSER name rules... as the admin. Unlike the users of
// [WithACLUser], such a user is gone after a restart.
func (s *Server) SetUser(ctx context.Context, name string, rules ...string) error {
	args := []any{"SETUSER", name}
	for _, r := range rules {
		args = append(args, r)
	}
	_, err := s.Do(ctx, "ACL", args...)
	return err
}

// Logs returns everything redis-server has written to its log
// ([ServerLogFile]), over all its starts.
func (s *Server) Logs() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, ServerLogFile))
	return string(b), err
}

// PID returns the process ID of the running (or paused) redis-server, or 0.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateRunning && s.state != StatePaused {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Running reports whether the server is running: started, and not paused,
// stopped, killed or closed.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == StateRunning
}

// Paused reports whether the server is paused ([Server.Pause]).
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == StatePaused
}

// ---------------------------------------------------------------------------
// Lifecycle

// Pause stops the process with SIGSTOP and returns once it is stopped.
// Connections to a paused server still open (the kernel accepts them) but
// nothing is answered until [Server.Resume]. Pausing a paused server does
// nothing; pausing a stopped one is an error.
func (s *Server) Pause(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StatePaused:
		return nil
	case StateRunning:
	default:
		return s.errorf("pause", fmt.Errorf("server is %v", s.state))
	}
	pid := s.proc.cmd.Process.Pid
	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return s.errorf("pause", err)
	}
	s.state = StatePaused
	if err := waitStopped(ctx, pid); err != nil {
		return s.errorf("pause", err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT and returns once it answers
// PING. It does nothing to a server that is not paused.
func (s *Server) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StatePaused {
		return nil
	}
	if err := s.resumeLocked(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, serverReadyTimeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, serverProbeTimeout)
		_, err := s.probe(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return s.errorf("resume: wait for PING", fmt.Errorf("%w (last error: %v)", ctx.Err(), err))
		case <-time.After(serverPollInterval):
		}
	}
}

func (s *Server) resumeLocked() error {
	if s.state != StatePaused {
		return nil
	}
	if err := s.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return s.errorf("resume", err)
	}
	s.state = StateRunning
	return nil
}

// Kill sends SIGKILL and returns once the process is reaped: Redis runs no
// shutdown code (nothing is saved; an AOF with appendfsync always has every
// acknowledged write). Killing a stopped server does nothing.
func (s *Server) Kill(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked(ctx)
}

func (s *Server) killLocked(ctx context.Context) error {
	switch s.state {
	case StateStopped, StateTerminated:
		return nil
	}
	// SIGKILL ends a stopped process too: no need to resume it first.
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return s.errorf("kill", err)
	}
	s.state = StateStopped
	ctx, cancel := context.WithTimeout(ctx, serverKillTimeout)
	defer cancel()
	select {
	case <-s.proc.exited:
		return nil
	case <-ctx.Done():
		return s.errorf("kill: wait for exit", ctx.Err())
	}
}

// Stop shuts the server down cleanly with SIGTERM (a paused server is
// resumed first) and returns once it has exited: with [WithRDB] it writes its
// snapshot. If it has not exited within 15s (a master waits up to 10s for
// lagging replicas) or when ctx ends, it is killed and Stop returns an
// error. Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateStopped, StateTerminated:
		return nil
	}
	if err := s.resumeLocked(); err != nil {
		return err
	}
	if err := s.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return s.errorf("stop", err)
	}
	tctx, cancel := context.WithTimeout(ctx, serverStopTimeout)
	defer cancel()
	select {
	case <-s.proc.exited:
		s.state = StateStopped
		return nil
	case <-tctx.Done():
	}
	err := fmt.Errorf("no exit after SIGTERM: %w; killed", tctx.Err())
	return errors.Join(s.errorf("stop", err), s.killLocked(context.Background()))
}

// Start starts a stopped or killed server again with the same arguments, on
// the same port and in the same directory (so it loads its RDB or AOF, if
// any), and returns once it answers PING and, for a replica whose master is
// running, once its link is up. What was changed at run time (CONFIG SET,
// ACL SETUSER, [Server.Promote], [Server.ReplicaOf]) is not kept. Starting a
// running server does nothing; a paused one is resumed.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case StateRunning:
		s.mu.Unlock()
		return nil
	case StatePaused:
		s.mu.Unlock()
		return s.Resume(ctx)
	case StateTerminated:
		s.mu.Unlock()
		return s.errorf("start", errors.New("server is closed"))
	}
	defer s.mu.Unlock()
	err := s.startLocked(ctx)
	if errors.Is(err, errPortTaken) {
		err = fmt.Errorf("port %d was taken by another process while the server was down: %w", s.port, err)
	}
	return err
}

// Restart is [Server.Stop] followed by [Server.Start].
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Close kills the server (resuming it first if it is paused), reaps it,
// frees its port and, for [RunServer], removes its directory. It is
// idempotent; [StartServer] registers it with t.Cleanup.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateTerminated {
		return nil
	}
	errs := []error{s.resumeLocked(), s.killLocked(context.Background())}
	s.state = StateTerminated
	ReleasePort(s.port)
	if s.ownDir {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return s.errorf("close", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Replication

// Promote makes a replica a master (REPLICAOF NO ONE): it keeps its data, and
// its INFO replication master_replid changes while the old one moves to
// master_replid2. A restart makes it a replica again ([Server.Start]).
func (s *Server) Promote(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Do(ctx, "REPLICAOF", "NO", "ONE"); err != nil {
		return s.errorf("promote", err)
	}
	s.master = nil
	return nil
}

// ReplicaOf makes the server a replica of master at run time (REPLICAOF,
// after setting masteruser, masterauth and tls-replication as master needs),
// dropping its own data for master's, and returns once the link is up. A
// server with TLS replicates from a TLS master only: both need certificates
// from one CA.
func (s *Server) ReplicaOf(ctx context.Context, master *Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if master.tls != nil && s.tls == nil {
		return s.errorf("replicaof", errors.New("the master uses TLS; this server has no certificate to replicate with"))
	}
	set := [][2]string{{"masteruser", master.user}, {"masterauth", master.pass}}
	switch {
	case master.tls != nil:
		set = append(set, [2]string{"tls-replication", "yes"})
	case s.tls != nil:
		set = append(set, [2]string{"tls-replication", "no"})
	}
	for _, kv := range set {
		if _, err := s.Do(ctx, "CONFIG", "SET", kv[0], kv[1]); err != nil {
			return s.errorf("replicaof: CONFIG SET "+kv[0], err)
		}
	}
	if _, err := s.Do(ctx, "REPLICAOF", "127.0.0.1", master.port); err != nil {
		return s.errorf("replicaof", err)
	}
	s.master = master
	if err := s.waitLinkUp(ctx); err != nil {
		return s.errorf("replicaof", err)
	}
	return nil
}

// waitLinkUp polls INFO replication until master_link_status is up.
func (s *Server) waitLinkUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, replicaSyncTimeout)
	defer cancel()
	var last map[string]string
	var lastErr error
	for {
		last, lastErr = s.Info(ctx, "replication")
		if lastErr == nil && last["master_link_status"] == "up" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication link not up: %w (master_link_status %q, last error %v)",
				ctx.Err(), last["master_link_status"], lastErr)
		case <-time.After(serverPollInterval):
		}
	}
}

// WaitReplicaSynced returns once this replica has applied everything its
// master had written when WaitReplicaSynced was called: its link is up and
// its slave_repl_offset has reached the master's master_repl_offset. It is
// bounded by ctx and 10s.
func (s *Server) WaitReplicaSynced(ctx context.Context) error {
	s.mu.Lock()
	master := s.master
	s.mu.Unlock()
	if master == nil {
		return s.errorf("wait replica synced", errors.New("not a replica"))
	}
	ctx, cancel := context.WithTimeout(ctx, replicaSyncTimeout)
	defer cancel()
	minfo, err := master.Info(ctx, "replication")
	if err != nil {
		return s.errorf("wait replica synced: master INFO", err)
	}
	target, err := strconv.ParseInt(minfo["master_repl_offset"], 10, 64)
	if err != nil {
		return s.errorf("wait replica synced: master_repl_offset", err)
	}
	var last map[string]string
	var lastErr error
	for {
		last, lastErr = s.Info(ctx, "replication")
		if lastErr == nil && last["master_link_status"] == "up" {
			if off, err := strconv.ParseInt(last["slave_repl_offset"], 10, 64); err == nil && off >= target {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return s.errorf("wait replica synced", fmt.Errorf("%w: master offset %d, replica %q, link %q, last error %v",
				ctx.Err(), target, last["slave_repl_offset"], last["master_link_status"], lastErr))
		case <-time.After(serverPollInterval):
		}
	}
}

func (s *Server) errorf(op string, err error) error {
	return fmt.Errorf("integration: server %s: %s: %w", s.addr, op, err)
}
