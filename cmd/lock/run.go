package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

const runHead = `Usage: lock run [flags] KEY -- COMMAND [ARGS...]

Acquires KEY, runs COMMAND while holding it and releases it when COMMAND
exits. While COMMAND runs, the lock is extended in the background (every
ttl/3). If the lock is lost (an extension finds it gone, or it is about to
expire unrenewed), COMMAND gets SIGTERM, then SIGKILL after --grace, and
lock exits 76. SIGINT, SIGTERM and SIGHUP sent to lock are passed on to
COMMAND; lock then waits for it and releases the lock.

COMMAND runs with stdin, stdout and stderr passed through and with
  LOCK_KEY     the key as stored (namespace included)
  LOCK_VALUE   this acquisition's random value
  LOCK_FENCE   the fencing token, when the backend gives one
in its environment. Unless stdin is a terminal, COMMAND gets a process
group of its own: signals go to the whole group, and whatever is left of
the group when COMMAND exits is killed before the lock is released. If
lock itself dies, even by SIGKILL, a guardian process kills that group at
once; with stdin a terminal it kills COMMAND alone, not what it started.

LOCK_CONFIG, which may hold passwords, is removed from COMMAND's
environment unless --pass-config is given.
`

const runTail = `
Examples:
  lock run --no-wait nightly-report -- ./report.sh       # cron: skip if running elsewhere
  lock run --wait 5m --ttl 1m migrate -- ./migrate.sh up
  LOCK_CONFIG="$(cat lock.json)" lock run deploy -- sh -c 'echo "$LOCK_KEY"; make deploy'

` + statusTable

func cmdRun(args []string, stdin, stdout, stderr *os.File) error {
	fset := newFlagSet("run")
	var bf backendFlags
	bf.register(fset)
	ttl := fset.Duration("ttl", 30*time.Second, "time to live of the lock; it is extended every ttl/3 while the command runs")
	wait := fset.Duration("wait", 0, "wait up to this long for the lock (default: the configuration's retry schedule)")
	noWait := fset.Bool("no-wait", false, "one attempt: exit 75 at once if the lock is held elsewhere")
	grace := fset.Duration("grace", 10*time.Second, "when the lock is lost, time between SIGTERM and SIGKILL to the command")
	passConfig := fset.Bool("pass-config", false, "pass LOCK_CONFIG on to the command; by default it is removed from the command's environment, since it may hold passwords")
	if err := parse(fset, args, stdout, runHead, runTail); err != nil {
		return err
	}
	rest := fset.Args()
	switch {
	case len(rest) == 0:
		return usageErr("run: missing KEY: lock run [flags] KEY -- COMMAND [ARGS...]")
	case rest[0] == "":
		return usageErr("run: KEY must not be empty")
	case len(rest) == 1:
		return usageErr("run: missing -- COMMAND after KEY %q", rest[0])
	case rest[1] != "--":
		return usageErr("run: want -- after KEY %q, got %q (flags go before KEY)", rest[0], rest[1])
	case len(rest) == 2 || rest[2] == "":
		return usageErr("run: missing COMMAND after --")
	}
	key, argv := rest[0], rest[2:]
	waitSet := false
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "wait" {
			waitSet = true
		}
	})
	switch {
	case *ttl <= 0:
		return usageErr("run: --ttl %v must be positive", *ttl)
	case *ttl < 10*time.Millisecond: // less could not even start a command
		return usageErr("run: --ttl %v must be at least 10ms", *ttl)
	case *grace < 0:
		return usageErr("run: --grace %v must not be negative", *grace)
	case waitSet && *noWait:
		return usageErr("run: give either --wait or --no-wait, not both")
	case waitSet && *wait < 0:
		return usageErr("run: --wait %v must not be negative", *wait)
	}

	be, err := bf.load()
	if err != nil {
		return err
	}
	doOpts := []lock.DoOption{lock.InNamespace()}
	switch {
	case *noWait || (waitSet && *wait == 0):
		setRetries(be.cfg, 0)
	case waitSet:
		setRetries(be.cfg, -1) // until the wait runs out
		doOpts = append(doOpts, lock.MaxWait(*wait))
	}
	locker, err := be.create()
	if err != nil {
		return err
	}
	defer locker.Destroy()
	switch {
	case be.cfg.Type == config.Redis:
	case be.source == "":
		fmt.Fprintln(stderr, "lock: warning: no --servers, --config or LOCK_CONFIG: the in-memory lock excludes nothing outside this process")
	default:
		fmt.Fprintf(stderr, "lock: warning: the in-memory lock (%s) excludes nothing outside this process\n", be.source)
	}

	// The guardian starts before the lock is taken; if it cannot, nothing
	// runs: a command that could outlive lock unguarded must not.
	g, err := newGuard(!isTerminal(stdin), stderr)
	if err != nil {
		return exitErr(exitSoftware, "run: %v", err)
	}
	defer g.close()
	r := &runner{
		argv:       argv,
		grace:      *grace,
		stdin:      stdin,
		stdout:     stdout,
		stderr:     stderr,
		guard:      g,
		passConfig: *passConfig,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.cancelWait = cancel
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.relay(sigs, done) })
	err = lock.Do(ctx, locker, key, *ttl, r.run, doOpts...)
	close(done)
	wg.Wait()
	return r.outcome(err, be)
}

// setRetries sets the number of attempts after the first, for either
// backend: 0 for one attempt, negative for "until the context ends".
func setRetries(cfg *config.Config, n int) {
	if cfg.Type == config.Redis {
		cfg.LockOptions.RetryCount = n
	} else {
		cfg.Retry = n
	}
}

// runner runs the command under the lock and passes signals on to it.
type runner struct {
	argv       []string
	grace      time.Duration
	stdin      *os.File
	stdout     *os.File
	stderr     *os.File
	guard      *guard // kills the command's processes if lock dies
	passConfig bool   // keep LOCK_CONFIG in the command's environment
	cancelWait context.CancelFunc

	mu          sync.Mutex
	cmd         *exec.Cmd // once started
	interrupted os.Signal // a signal that came while waiting for the lock
	finished    bool      // the command has exited

	// Set by run, read after Do returns.
	started bool
	status  int           // the command's exit status
	lost    bool          // run saw the lock lost while the command ran
	killed  bool          // ... and sent SIGKILL after the grace
	took    time.Duration // from SIGTERM until the command exited
	fnErr   error         // run's own error
}

// relay passes signals to the command; before it starts, a signal ends
// the wait for the lock.
func (r *runner) relay(sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			r.mu.Lock()
			switch {
			case r.cmd == nil && r.interrupted == nil:
				r.interrupted = sig
				r.cancelWait()
			case r.cmd != nil && !r.finished:
				_ = signalChild(r.cmd, sig, r.guard.pgid)
			}
			r.mu.Unlock()
		}
	}
}

// run is Do's function: it starts the command and waits for it; if the
// lock is lost meanwhile, it stops the command.
func (r *runner) run(ctx context.Context, l lock.Lock) error {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.stdin, r.stdout, r.stderr
	cmd.Env = childEnv(os.Environ(), l, r.passConfig)
	setupChild(cmd, r.guard.pgid)
	r.mu.Lock()
	if r.interrupted != nil { // the signal came just as the lock was acquired
		r.mu.Unlock()
		r.fnErr = errInterrupted
		return r.fnErr
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.fnErr = startErr(r.argv[0], err)
		return r.fnErr
	}
	r.guard.started(cmd.Process.Pid)
	r.cmd, r.started = cmd, true
	r.mu.Unlock()

	exited := make(chan *os.ProcessState, 1)
	go func() {
		_ = cmd.Wait() // a non-zero status is in ProcessState
		r.mu.Lock()
		r.finished = true
		r.mu.Unlock()
		exited <- cmd.ProcessState
	}()
	var ps *os.ProcessState
	select {
	case ps = <-exited:
	case <-ctx.Done():
		// Only Do cancels ctx once the command runs: the lock is lost.
		r.lost = true
		began := time.Now()
		_ = signalChild(cmd, syscall.SIGTERM, r.guard.pgid)
		grace := time.NewTimer(r.grace)
		select {
		case ps = <-exited:
		case <-grace.C:
			r.killed = true
			_ = signalChild(cmd, syscall.SIGKILL, r.guard.pgid)
			ps = <-exited
		}
		grace.Stop()
		r.took = time.Since(began)
	}
	// Whatever the command left running in its group must not go on
	// without the lock, which Do releases once run returns.
	_ = killGroup(r.guard.pgid)
	r.guard.dismiss() // nothing is left for it to kill
	r.status = exitStatus(ps)
	if r.status != 0 {
		r.fnErr = fmt.Errorf("command exited with status %d", r.status)
	}
	return r.fnErr
}

var errInterrupted = errors.New("interrupted")

// signalName names the signals the tool handles as kill(1) does.
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// startErr tells "not found" (127) from "cannot run" (126), as shells do.
func startErr(name string, err error) error {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return exitErr(exitNotFound, "run: %s: command not found", name)
	}
	return exitErr(exitCannotExec, "run: cannot run %s: %v", name, err)
}

// childEnv is env without any LOCK_KEY, LOCK_VALUE or LOCK_FENCE it
// inherited (from an outer `lock run`, say), with this lock's. LOCK_CONFIG
// is left out too unless passConfig: it may hold the masters' passwords,
// which the command has no need for.
func childEnv(env []string, l lock.Lock, passConfig bool) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "LOCK_KEY", "LOCK_VALUE", "LOCK_FENCE":
			continue
		case lock.EnvVar:
			if !passConfig {
				continue
			}
		}
		out = append(out, kv)
	}
	out = append(out, "LOCK_KEY="+l.Key(), "LOCK_VALUE="+l.Value())
	if t := l.Token(); t != 0 { // fencing is on
		out = append(out, "LOCK_FENCE="+strconv.FormatUint(t, 10))
	}
	return out
}

// outcome turns Do's result into the exit status. Do's error says what
// happened, told apart with errors.Is: the lock not acquired (held
// elsewhere; too few masters, ErrNoQuorum; a configuration the masters
// refuse, ErrAuth, ErrTLS, ErrSameServer), lost while the command ran
// (ErrLost), or not released (Unlock's error, the one *lock.Error left
// when the lock was not lost).
func (r *runner) outcome(err error, be *backend) error {
	var le *lock.Error
	errors.As(err, &le) // Lock's error, Do's loss, or else Unlock's
	if !r.started {
		var ex *exitError
		switch {
		case errors.As(r.fnErr, &ex): // the command could not be started
			if le != nil {
				return exitErr(ex.code, "%v (and releasing the lock: %v)", ex.err, trimLock(le))
			}
			return r.fnErr
		case r.interrupted != nil:
			return exitErr(128+signalNumber(r.interrupted), "run: interrupted by %s while waiting for the lock", signalName(r.interrupted))
		case errors.Is(err, lock.ErrInvalidArgument):
			return usageErr("run: %v", trimLock(err))
		case le != nil && misconfigured(le.Cause):
			return exitErr(exitConfig, "run: not acquired: the masters refuse this configuration: %v", trimLock(err))
		case errors.Is(err, lock.ErrNotAcquired) && errors.Is(err, lock.ErrNoQuorum):
			return exitErr(exitUnavailable, "run: not acquired: too few masters answer: %v", trimLock(err))
		case errors.Is(err, lock.ErrNotAcquired):
			var key string
			if le != nil {
				key = le.Key
			}
			return exitErr(exitNotAcquired, "run: not acquired, held elsewhere%s: %v", be.heldFor(key), trimLock(err))
		case err == nil:
			return exitErr(exitSoftware, "run: the command did not run")
		default:
			return exitErr(exitSoftware, "run: %v", trimLock(err))
		}
	}
	if errors.Is(err, lock.ErrLost) {
		var what string
		switch {
		case !r.lost:
			what = fmt.Sprintf("the command had exited with status %d", r.status)
		case r.killed:
			what = fmt.Sprintf("sent SIGTERM, then SIGKILL after %v", r.grace)
		default:
			what = fmt.Sprintf("sent SIGTERM; the command exited with status %d after %v", r.status, r.took.Round(time.Millisecond))
		}
		return exitErr(exitLost, "run: the lock was lost while the command ran (%s): %v", what, trimLock(le))
	}
	if le != nil {
		// The command ran under the lock; what is left of it expires.
		fmt.Fprintf(r.stderr, "lock: warning: run: releasing the lock: %v\n", oneLine(trimLock(le).Error()))
	}
	if r.status != 0 {
		return &exitError{code: r.status} // the command's own status, nothing to add
	}
	return nil
}

// misconfigured reports whether cause, a failed Lock's Cause, says that
// the masters refuse this configuration: too many refuse its credentials
// (ErrAuth) or its TLS (ErrTLS) for a quorum, or two are one server
// (ErrSameServer). The library does not retry these. (The masters' own
// errors are not asked: one master refusing while the others hold the key
// is a key held elsewhere.)
func misconfigured(cause error) bool {
	err := cause
	return errors.Is(err, lock.ErrAuth) || errors.Is(err, lock.ErrTLS) || errors.Is(err, lock.ErrSameServer)
}

// trimLock drops the "lock: " that the library's errors start with, since
// the tool's line starts with it already.
func trimLock(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.TrimPrefix(oneLine(err.Error()), "lock: "))
}

// heldFor says, for the message of a lock held elsewhere, on how many
// masters key is held and for how much longer (their PTTLs), asked within
// a second; "" for the in-memory lock or when no master could tell. The
// holder may be a client that gave up while a majority was hung: its SETs,
// queued in the sockets, ran when the masters resumed, and the key stays,
// owned by nobody, until its ttl runs out.
func (b *backend) heldFor(key string) string {
	if b.cfg.Type != config.Redis || key == "" {
		return ""
	}
	conns := b.cfg.Connections
	ttls := make([]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			ttls[i] = -1
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			conn, err := dialMaster(ctx, c, time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			if ms, err := redis.Int64(redis.DoContext(conn, ctx, "PTTL", key)); err == nil && ms >= 0 {
				ttls[i] = time.Duration(ms) * time.Millisecond
			}
		})
	}
	wg.Wait()
	var held []time.Duration
	for _, d := range ttls {
		if d >= 0 {
			held = append(held, d)
		}
	}
	if len(held) == 0 {
		return ""
	}
	slices.Sort(held)
	lo, hi := held[0].Round(time.Millisecond), held[len(held)-1].Round(time.Millisecond)
	span := lo.String()
	if hi != lo {
		span += " to " + hi.String()
	}
	return fmt.Sprintf(" (the key is on %d of %d masters for another %s)", len(held), len(conns), span)
}
