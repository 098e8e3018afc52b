package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/internal/leakcheck"
	"github.com/leverege/lock/internal/redistest"
)

// The end-to-end tests run the built binary against three real masters,
// redis-server processes started on first use (redistest).
var shared struct {
	once sync.Once
	ms   []*redistest.Server
	err  error
}

// bin is the lock binary, built once by TestMain (with -race when the tests
// have it).
var bin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse() // for testing.Verbose
	dir, err := os.MkdirTemp("", "lock-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "lock")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	began := time.Now()
	if out, err := exec.Command(goCmd, append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the lock binary: %v\n%s", err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "built %s in %v (race: %v)\n", bin, time.Since(began).Round(time.Millisecond), raceEnabled)
	}
	return leakcheck.Main(m, func() error {
		var errs []error
		for _, s := range shared.ms {
			errs = append(errs, s.Close())
		}
		return errors.Join(errs...)
	})
}

// testNodeTimeout is roomier than the default 50ms: the race detector on two
// shared cores slows every round trip.
const testNodeTimeout = 250 * time.Millisecond

// masters returns the three shared masters, resumed and flushed, and
// resumes them again when the test ends.
func masters(t *testing.T) []*redistest.Server {
	t.Helper()
	shared.once.Do(func() {
		for range 3 {
			s, err := redistest.RunServer(context.Background())
			if err != nil {
				shared.err = err
				return
			}
			shared.ms = append(shared.ms, s)
		}
	})
	if shared.err != nil {
		t.Fatalf("these tests need real Redis masters: %v", shared.err)
	}
	ms := shared.ms
	heal := func() {
		for _, m := range ms {
			if m.Paused() {
				if err := m.Resume(context.Background()); err != nil {
					t.Errorf("resume %s: %v", m.Addr(), err)
				}
			}
		}
	}
	heal()
	for _, m := range ms {
		if _, err := m.Do(t.Context(), "FLUSHALL"); err != nil {
			t.Fatalf("FLUSHALL on %s: %v", m.Addr(), err)
		}
	}
	t.Cleanup(heal)
	return ms
}

// configJSON is what an operator would put in LOCK_CONFIG for ms.
func configJSON(ms []*redistest.Server) string {
	var conns []string
	for _, m := range ms {
		conns = append(conns, fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, m.Port()))
	}
	return fmt.Sprintf(`{"type":"redis","connections":[%s],"lockOptions":{"nodeTimeout":%d,"retryDelay":50,"retryJitter":25}}`,
		strings.Join(conns, ","), testNodeTimeout.Milliseconds())
}

// redisEnv is the environment that points the tool at ms.
func redisEnv(ms []*redistest.Server) []string {
	return []string{lock.EnvVar + "=" + configJSON(ms)}
}

// locker is the library on ms, in the test process, for holding keys the
// tool must find held.
func locker(t *testing.T, ms []*redistest.Server, namespace string) lock.Locker {
	t.Helper()
	cfg, err := config.Parse([]byte(configJSON(ms)))
	if err != nil {
		t.Fatalf("config.Parse(%s) err = %v, want nil", configJSON(ms), err)
	}
	l, err := lock.Create(lock.Options{Namespace: namespace, LockConfig: cfg})
	if err != nil {
		t.Fatalf("lock.Create(namespace %q, the masters' config) err = %v, want nil", namespace, err)
	}
	t.Cleanup(func() { _ = l.Destroy() })
	return l
}

// result is one finished run of the tool.
type result struct {
	args           []string // the tool's arguments
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// proc is the tool running.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	began          time.Time
}

// command returns the tool ready to start with args, its environment the
// test's (without LOCK_CONFIG) plus env.
func command(env []string, args ...string) *proc {
	p := &proc{cmd: exec.Command(bin, args...)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, lock.EnvVar+"=") && !strings.HasPrefix(kv, "GORACE=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	// The race detector's report, if any, fails the status checks; its
	// default pause of 1s at exit would only slow every run.
	p.cmd.Env = append(p.cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 5 * time.Second // a grandchild left holding the pipes
	return p
}

// start starts the tool; the test's end kills it if it still runs.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := command(env, args...)
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start lock %q: %v", args, err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// wait waits up to limit for the tool to exit.
func (p *proc) wait(t *testing.T, limit time.Duration) result {
	t.Helper()
	r, err := p.finish(limit)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// finish waits up to limit for the tool to exit (killing it then), and
// says what went wrong rather than stopping the test, for goroutines that
// a test starts (which must not call t.Fatal).
func (p *proc) finish(limit time.Duration) (result, error) {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return result{}, fmt.Errorf("lock %v: %v", p.cmd.Args[1:], err)
		}
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-done
		return result{}, fmt.Errorf("lock %v still ran after %v; stderr: %s", p.cmd.Args[1:], limit, p.stderr.String())
	}
	return result{
		args:    p.cmd.Args[1:],
		code:    p.cmd.ProcessState.ExitCode(),
		stdout:  p.stdout.String(),
		stderr:  p.stderr.String(),
		elapsed: time.Since(p.began),
	}, nil
}

// run runs the tool to its end (at most a minute).
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return start(t, env, args...).wait(t, time.Minute)
}

// runAside is run for a goroutine the test starts: it reports what went
// wrong rather than stopping the test.
func runAside(env []string, args ...string) (result, error) {
	p := command(env, args...)
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start lock %q: %v", args, err)
	}
	return p.finish(time.Minute)
}

// wantExit reports, without stopping the test, an exit status of r other
// than want (why, if not empty, says what that status means); it returns
// whether r's was want.
func wantExit(t *testing.T, r result, want int, why string) bool {
	t.Helper()
	if r.code == want {
		return true
	}
	if why != "" {
		why = " (" + why + ")"
	}
	t.Errorf("lock %q: exit status %d, want %d%s; stderr: %s", r.args, r.code, want, why, r.stderr)
	return false
}

// oneLineError checks that r failed with one "lock: " line on stderr that
// contains want, and the status code.
func oneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	wantExit(t, r, code, "")
	// The tool's lines start "lock: "; a command's own output may be
	// interleaved.
	var errs []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "lock: ") && !strings.HasPrefix(l, "lock: warning: ") {
			errs = append(errs, l)
		}
	}
	switch {
	case len(errs) != 1:
		t.Errorf("lock %q: %d error lines on stderr, want one; stderr: %q", r.args, len(errs), r.stderr)
	case !strings.Contains(errs[0], want):
		t.Errorf("lock %q: error line %q, want it to contain %q", r.args, errs[0], want)
	}
	for _, bad := range []string{"goroutine ", "panic"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("lock %q: stderr contains %q, want no stack trace; stderr: %s", r.args, bad, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "DATA RACE") {
		t.Errorf("lock %q: stderr reports a data race: %s", r.args, r.stderr)
	}
}

// waitFile waits up to 20s for path to exist.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within 20s", path)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding the output as %T: %v; output: %s", v, err, s)
	}
	return v
}
