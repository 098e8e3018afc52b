//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

// eventually reports whether cond held within waitFor, checking it at
// once and then every tick.
func eventually(waitFor, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(waitFor)
	for {
		if cond() {
			return true
		}
		if time.Now().Add(tick).After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
}

// Three tools contend for one key, twice each: their commands' intervals,
// stamped by the commands themselves, never overlap, and each got its own
// lock value.
func TestRunNoOverlap(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "start $(date +%s%N) $LOCK_VALUE $LOCK_KEY" >> "$1"; sleep 0.2; echo "end $(date +%s%N) $LOCK_VALUE $LOCK_KEY" >> "$1"`
	const tools, rounds = 3, 2
	var wg sync.WaitGroup
	results := make([]result, tools*rounds)
	errs := make([]error, tools*rounds)
	for i := range tools {
		wg.Go(func() {
			for j := range rounds {
				results[i*rounds+j], errs[i*rounds+j] = runAside(env, "run", "--namespace", "cli", "--wait", "30s", "shared", "--", "sh", "-c", script, "sh", log)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		wantExit(t, r, 0, "")
		if r.stderr != "" {
			t.Errorf("lock %q: stderr = %q, want nothing", r.args, r.stderr)
		}
	}

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("reading the commands' log: %v", err)
	}
	type span struct{ start, end int64 }
	spans := map[string]*span{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("log line %q: %d fields, want 4 (start|end, time, LOCK_VALUE, LOCK_KEY)", line, len(f))
		}
		if f[3] != "cli:shared" {
			t.Errorf("log line %q: LOCK_KEY = %q, want %q", line, f[3], "cli:shared")
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("log line %q: time: %v", line, err)
		}
		s := spans[f[2]]
		if s == nil {
			s = &span{}
			spans[f[2]] = s
		}
		if f[0] == "start" {
			s.start = ns
		} else {
			s.end = ns
		}
	}
	if len(spans) != tools*rounds {
		t.Fatalf("%d lock values in the log, want %d: one lock value per run:\n%s", len(spans), tools*rounds, b)
	}
	var list []span
	for v, s := range spans {
		if !(s.start > 0 && s.end >= s.start) {
			t.Fatalf("value %s: %+v, want a start and an end no earlier than it", v, *s)
		}
		list = append(list, *s)
	}
	slices.SortFunc(list, func(a, b span) int { return int(a.start - b.start) })
	for i := 1; i < len(list); i++ {
		if list[i].start < list[i-1].end {
			t.Errorf("run %d started %v before run %d ended, want no overlap",
				i, time.Duration(list[i-1].end-list[i].start), i-1)
		}
	}
}

// While the key is held elsewhere, --no-wait fails at once with 75 and
// --wait fails with 75 when it runs out; once it is free, both succeed.
func TestRunNotAcquired(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	l := locker(t, ms, "")
	held, err := l.Lock(t.Context(), "nightly-report", 30*time.Second)
	if err != nil {
		t.Fatalf(`Lock("nightly-report", 30s) err = %v, want nil`, err)
	}

	r := run(t, env, "run", "--no-wait", "nightly-report", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitNotAcquired, "not acquired, held elsewhere")
	if !strings.Contains(r.stderr, "held by another owner") {
		t.Errorf(`lock %q: stderr = %q, want it to say "held by another owner"`, r.args, r.stderr)
	}
	if want := regexp.MustCompile(`the key is on 3 of 3 masters for another [0-9.]+s( to [0-9.]+s)?\)`); !want.MatchString(r.stderr) {
		t.Errorf("lock %q: stderr = %q, want it to match %s: the message gives the key's remaining ttl on the masters that hold it", r.args, r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("lock %q: stdout = %q, want nothing: the command must not run", r.args, r.stdout)
	}
	if r.elapsed >= 5*time.Second {
		t.Errorf("lock %q took %v, want less than 5s", r.args, r.elapsed)
	}

	r = run(t, env, "run", "--wait", "500ms", "nightly-report", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitNotAcquired, "not acquired, held elsewhere")
	if !strings.Contains(r.stderr, "held by another owner") {
		t.Errorf(`lock %q: stderr = %q, want it to say "held by another owner"`, r.args, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("lock %q: stdout = %q, want nothing: the command must not run", r.args, r.stdout)
	}
	if r.elapsed < 500*time.Millisecond {
		t.Errorf("lock %q gave up after %v, want at least the 500ms of --wait", r.args, r.elapsed)
	}

	// Released while a tool waits: it gets the lock.
	p := start(t, env, "run", "--wait", "30s", "nightly-report", "--", "sh", "-c", "echo ran")
	time.Sleep(300 * time.Millisecond)
	if err := held.Unlock(t.Context()); err != nil {
		t.Fatalf(`Unlock of "nightly-report" err = %v, want nil`, err)
	}
	r = p.wait(t, 30*time.Second)
	wantExit(t, r, 0, "")
	if r.stdout != "ran\n" {
		t.Errorf("lock %q after the key was released: stdout = %q, want %q", r.args, r.stdout, "ran\n")
	}

	r = run(t, env, "run", "--no-wait", "nightly-report", "--", "sh", "-c", "echo ran")
	wantExit(t, r, 0, "")
	if r.stdout != "ran\n" {
		t.Errorf("lock %q of a free key: stdout = %q, want %q", r.args, r.stdout, "ran\n")
	}
}

// With two of three masters paused, the lock cannot be had: 69, not 75.
func TestRunUnavailable(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	for _, m := range ms[1:] {
		if err := m.Pause(t.Context()); err != nil {
			t.Fatalf("pausing %s: %v", m.Addr(), err)
		}
	}
	r := run(t, env, "run", "--no-wait", "k", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitUnavailable, "too few masters answer")
	if r.stdout != "" {
		t.Errorf("lock %q: stdout = %q, want nothing: the command must not run", r.args, r.stdout)
	}
	// Waiting does not turn "too few masters" into "held elsewhere".
	r = run(t, env, "run", "--wait", "300ms", "k", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitUnavailable, "too few masters answer")
}

// TestRunMisconfigured: masters that refuse the credentials make lock run
// exit 78 (configuration) within one round trip, not retry for its whole
// schedule and report masters down.
func TestRunMisconfigured(t *testing.T) {
	ms := masters(t)
	cfg := fmt.Sprintf(`{"type":"redis","connections":[{"host":"127.0.0.1","port":%d,"password":"wrong"},{"host":"127.0.0.1","port":%d,"password":"wrong"},{"host":"127.0.0.1","port":%d,"password":"wrong"}],"lockOptions":{"retryCount":-1}}`,
		ms[0].Port(), ms[1].Port(), ms[2].Port())
	for _, m := range ms {
		if _, err := m.Do(t.Context(), "CONFIG", "SET", "requirepass", "right"); err != nil {
			t.Fatalf("CONFIG SET requirepass on %s: %v", m.Addr(), err)
		}
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if c, err := redis.Dial("tcp", m.Addr(), redis.DialPassword("right")); err == nil {
				_, _ = c.Do("CONFIG", "SET", "requirepass", "")
				c.Close()
			}
		}
	})
	r := run(t, []string{"LOCK_CONFIG=" + cfg}, "run", "--wait", "30s", "k", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitConfig, "the masters refuse this configuration")
	if !strings.Contains(r.stderr, "WRONGPASS") {
		t.Errorf("lock %q with a wrong password: stderr = %q, want it to give the masters' WRONGPASS", r.args, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("lock %q: stdout = %q, want nothing: the command must not run", r.args, r.stdout)
	}
	if r.elapsed >= 5*time.Second {
		t.Errorf("lock %q with a wrong password took %v, want less than 5s: retried a configuration error", r.args, r.elapsed)
	}
	// status and bench say the same: 78, not masters down.
	r = run(t, []string{"LOCK_CONFIG=" + cfg}, "status")
	oneLineError(t, r, exitConfig, "refuses this configuration")
	r = run(t, []string{"LOCK_CONFIG=" + cfg}, "bench", "--duration", "300ms", "--workers", "2")
	oneLineError(t, r, exitConfig, "the masters refuse this configuration")
	// One master of three refusing while the key is held on the two others
	// is a key held elsewhere (75), not a refused configuration.
	two, err := config.Parse([]byte(fmt.Sprintf(`{"type":"redis","connections":[{"host":"127.0.0.1","port":%d,"password":"right"},{"host":"127.0.0.1","port":%d,"password":"right"}]}`,
		ms[1].Port(), ms[2].Port())))
	if err != nil {
		t.Fatal(err)
	}
	held, err := lock.Create(lock.Options{LockConfig: two})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Destroy()
	lk, err := held.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatalf("Lock(%q) on masters 1 and 2: %v", "k", err)
	}
	defer lk.Unlock(context.Background())
	one := fmt.Sprintf(`{"type":"redis","connections":[{"host":"127.0.0.1","port":%d,"password":"wrong"},{"host":"127.0.0.1","port":%d,"password":"right"},{"host":"127.0.0.1","port":%d,"password":"right"}]}`,
		ms[0].Port(), ms[1].Port(), ms[2].Port())
	r = run(t, []string{"LOCK_CONFIG=" + one}, "run", "--no-wait", "k", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitNotAcquired, "held elsewhere")
}

// A lost lock stops the command: SIGTERM to its process group (its
// children too), SIGKILL after --grace if it is still there; the tool
// exits 76.
func TestRunLostLock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string // $1: ready file, $2: marker file, $3: pid file
		killed bool
	}{
		{"stops on SIGTERM", `trap 'echo TERM >> "$2"; exit 0' TERM; sleep 60 & echo $! > "$3"; echo > "$1"; wait`, false},
		{"ignores SIGTERM", `trap 'echo TERM >> "$2"' TERM; sleep 60 & echo $! > "$3"; echo > "$1"; while :; do sleep 0.05; done`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := masters(t)
			env := redisEnv(ms)
			dir := t.TempDir()
			ready, marker, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "marker"), filepath.Join(dir, "pid")
			p := start(t, env, "run", "--ttl", "1s", "--grace", "500ms", "k", "--", "sh", "-c", tc.script, "sh", ready, marker, pidFile)
			waitFile(t, ready)
			grandchild := readPid(t, pidFile)
			if !alive(grandchild) {
				t.Fatalf("the command's sleep (pid %d) does not run, want it running", grandchild)
			}

			paused := time.Now()
			for _, m := range ms[1:] {
				if err := m.Pause(t.Context()); err != nil {
					t.Fatalf("pausing %s: %v", m.Addr(), err)
				}
			}
			r := p.wait(t, 30*time.Second)
			took := time.Since(paused)

			oneLineError(t, r, exitLost, "the lock was lost while the command ran")
			want := "sent SIGTERM; the command exited with status 0"
			if tc.killed {
				want = "SIGKILL after 500ms"
			}
			if !strings.Contains(r.stderr, want) {
				t.Errorf("lock %q: stderr = %q, want it to contain %q", r.args, r.stderr, want)
			}
			got, err := os.ReadFile(marker)
			if err != nil {
				t.Fatalf("reading the command's marker file: %v: the command got no SIGTERM", err)
			}
			if string(got) != "TERM\n" {
				t.Errorf("the command's marker file = %q, want %q (one SIGTERM)", got, "TERM\n")
			}
			if took >= 10*time.Second {
				t.Errorf("lock run --ttl 1s exited %v after 2 of 3 masters paused, want less than 10s: a 1s lock should be given up within a few seconds", took)
			}
			if !eventually(5*time.Second, 20*time.Millisecond, func() bool { return !alive(grandchild) }) {
				t.Errorf("the command's child (pid %d) still runs 5s on: the command's own child must be stopped too", grandchild)
			}
		})
	}
}

// waitPid waits up to 20s for path to hold a whole pid (a line), and
// returns it.
func waitPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return readPid(t, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not hold a pid within 20s", path)
	return 0
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s = %q: %v", path, b, err)
	}
	return pid
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// SIGTERM to the tool reaches the command, which exits its own way; the
// tool passes its status on and releases the lock, so the next run gets it
// at once.
func TestRunForwardsSignals(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			ready, marker, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "marker"), filepath.Join(dir, "pid")
			// sh runs "sleep &" with SIGINT ignored: it outlives the
			// command unless the tool kills the rest of the group.
			script := fmt.Sprintf(`trap 'echo %[1]s > "$2"; exit 7' %[1]s; sleep 60 & echo $! > "$3"; echo > "$1"; wait`, strings.TrimPrefix(signalName(sig), "SIG"))
			p := start(t, env, "run", "--ttl", "5s", "fwd", "--", "sh", "-c", script, "sh", ready, marker, pidFile)
			waitFile(t, ready)
			grandchild := readPid(t, pidFile)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatalf("sending %v to the tool: %v", sig, err)
			}
			r := p.wait(t, 30*time.Second)
			wantExit(t, r, 7, "the command's own status")
			if r.stderr != "" {
				t.Errorf("lock %q: stderr = %q, want nothing", r.args, r.stderr)
			}
			got, err := os.ReadFile(marker)
			if err != nil {
				t.Fatalf("reading the command's marker file: %v: the command did not get the signal", err)
			}
			if want := strings.TrimPrefix(signalName(sig), "SIG") + "\n"; string(got) != want {
				t.Errorf("the command's marker file = %q, want %q", got, want)
			}
			if r.elapsed >= 4*time.Second {
				t.Errorf("lock %q took %v, want less than 4s: a leftover kept the pipes open", r.args, r.elapsed)
			}
			if !eventually(5*time.Second, 20*time.Millisecond, func() bool { return !alive(grandchild) }) {
				t.Errorf("the command's child (pid %d) still runs 5s on: what the command left running must not outlive the lock", grandchild)
			}

			r = run(t, env, "run", "--no-wait", "fwd", "--", "true")
			wantExit(t, r, 0, "the signalled run released the lock")
		})
	}
}

// A signal while the tool waits for the lock ends the wait: 128+N, and the
// command never runs.
func TestRunInterruptedWhileWaiting(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	l := locker(t, ms, "")
	held, err := l.Lock(t.Context(), "busy", 30*time.Second)
	if err != nil {
		t.Fatalf(`Lock("busy", 30s) err = %v, want nil`, err)
	}
	defer func() { _ = held.Unlock(context.Background()) }()

	p := start(t, env, "run", "--wait", "30s", "busy", "--", "sh", "-c", "echo ran")
	time.Sleep(time.Second) // the tool is waiting by now
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("sending SIGINT to the tool: %v", err)
	}
	r := p.wait(t, 10*time.Second)
	oneLineError(t, r, 128+int(syscall.SIGINT), "interrupted by SIGINT while waiting for the lock")
	if r.stdout != "" {
		t.Errorf("lock %q: stdout = %q, want nothing: the command must not run", r.args, r.stdout)
	}
	if r.elapsed >= 10*time.Second {
		t.Errorf("lock %q took %v, want less than 10s", r.args, r.elapsed)
	}
}

// With fencing configured, the command gets LOCK_FENCE, and each
// acquisition's token is larger than the last.
func TestRunFence(t *testing.T) {
	ms := masters(t)
	cfg := strings.Replace(configJSON(ms), `"lockOptions":{`, `"lockOptions":{"fencing":true,`, 1)
	env := []string{"LOCK_CONFIG=" + cfg}
	var last uint64
	for range 3 {
		r := run(t, env, "run", "fenced", "--", "sh", "-c", `echo "$LOCK_FENCE"`)
		if !wantExit(t, r, 0, "") {
			t.FailNow()
		}
		fence, err := strconv.ParseUint(strings.TrimSpace(r.stdout), 10, 64)
		if err != nil {
			t.Fatalf("LOCK_FENCE=%q: %v, want a number", r.stdout, err)
		}
		if fence <= last {
			t.Errorf("LOCK_FENCE = %d, want more than the last run's %d", fence, last)
		}
		last = fence
	}
	// Without fencing there is no LOCK_FENCE.
	r := run(t, redisEnv(ms), "run", "unfenced", "--", "sh", "-c", `echo "${LOCK_FENCE-unset}"`)
	if !wantExit(t, r, 0, "") {
		t.FailNow()
	}
	if r.stdout != "unset\n" {
		t.Errorf("lock %q without fencing: stdout = %q, want %q (no LOCK_FENCE)", r.args, r.stdout, "unset\n")
	}
}
