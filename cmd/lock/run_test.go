//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	for i := range tools {
		wg.Go(func() {
			for j := range rounds {
				results[i*rounds+j] = run(t, env, "run", "--namespace", "cli", "--wait", "30s", "shared", "--", "sh", "-c", script, "sh", log)
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.Empty(t, r.stderr)
	}

	b, err := os.ReadFile(log)
	require.NoError(t, err)
	type span struct{ start, end int64 }
	spans := map[string]*span{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 4, "line %q", line)
		assert.Equal(t, "cli:shared", f[3], "LOCK_KEY")
		ns, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err, "line %q", line)
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
	require.Len(t, spans, tools*rounds, "one lock value per run:\n%s", b)
	var list []span
	for v, s := range spans {
		require.True(t, s.start > 0 && s.end >= s.start, "value %s: %+v", v, *s)
		list = append(list, *s)
	}
	slices.SortFunc(list, func(a, b span) int { return int(a.start - b.start) })
	for i := 1; i < len(list); i++ {
		assert.GreaterOrEqual(t, list[i].start, list[i-1].end, "run %d started %v before run %d ended",
			i, time.Duration(list[i-1].end-list[i].start), i-1)
	}
}

// While the key is held elsewhere, --no-wait fails at once with 75 and
// --wait fails with 75 when it runs out; once it is free, both succeed.
func TestRunNotAcquired(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	l := locker(t, ms, "")
	held, err := l.Lock(t.Context(), "nightly-report", 30*time.Second)
	require.NoError(t, err)

	r := run(t, env, "run", "--no-wait", "nightly-report", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitNotAcquired, "not acquired, held elsewhere")
	assert.Contains(t, r.stderr, "held by another owner")
	assert.Regexp(t, `the key is on 3 of 3 masters for another [0-9.]+s( to [0-9.]+s)?\)`, r.stderr,
		"the message gives the key's remaining ttl on the masters that hold it")
	assert.Empty(t, r.stdout, "the command must not run")
	assert.Less(t, r.elapsed, 5*time.Second)

	r = run(t, env, "run", "--wait", "500ms", "nightly-report", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitNotAcquired, "not acquired, held elsewhere")
	assert.Contains(t, r.stderr, "held by another owner")
	assert.Empty(t, r.stdout, "the command must not run")
	assert.GreaterOrEqual(t, r.elapsed, 500*time.Millisecond)

	// Released while a tool waits: it gets the lock.
	p := start(t, env, "run", "--wait", "30s", "nightly-report", "--", "sh", "-c", "echo ran")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, held.Unlock(t.Context()))
	r = p.wait(t, 30*time.Second)
	assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, "ran\n", r.stdout)

	r = run(t, env, "run", "--no-wait", "nightly-report", "--", "sh", "-c", "echo ran")
	assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, "ran\n", r.stdout)
}

// With two of three masters paused, the lock cannot be had: 69, not 75.
func TestRunUnavailable(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)
	require.NoError(t, ms[1].Pause(t.Context()))
	require.NoError(t, ms[2].Pause(t.Context()))
	r := run(t, env, "run", "--no-wait", "k", "--", "sh", "-c", "echo ran")
	oneLineError(t, r, exitUnavailable, "too few masters answer")
	assert.Empty(t, r.stdout, "the command must not run")
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
		_, err := m.Do(t.Context(), "CONFIG", "SET", "requirepass", "right")
		require.NoError(t, err)
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
	assert.Contains(t, r.stderr, "WRONGPASS")
	assert.Empty(t, r.stdout, "the command must not run")
	assert.Less(t, r.elapsed, 5*time.Second, "retried a configuration error")
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
			require.True(t, alive(grandchild), "the command's sleep runs")

			paused := time.Now()
			require.NoError(t, ms[1].Pause(t.Context()))
			require.NoError(t, ms[2].Pause(t.Context()))
			r := p.wait(t, 30*time.Second)
			took := time.Since(paused)

			oneLineError(t, r, exitLost, "the lock was lost while the command ran")
			if tc.killed {
				assert.Contains(t, r.stderr, "SIGKILL after 500ms")
			} else {
				assert.Contains(t, r.stderr, "sent SIGTERM; the command exited with status 0")
			}
			got, err := os.ReadFile(marker)
			require.NoError(t, err, "the command got no SIGTERM")
			assert.Equal(t, "TERM\n", string(got))
			assert.Less(t, took, 10*time.Second, "a 1s lock should be given up within a few seconds")
			assert.Eventually(t, func() bool { return !alive(grandchild) }, 5*time.Second, 20*time.Millisecond,
				"the command's own child must be stopped too")
		})
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
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
			require.NoError(t, p.cmd.Process.Signal(sig))
			r := p.wait(t, 30*time.Second)
			assert.Equal(t, 7, r.code, "the command's own status; stderr: %s", r.stderr)
			assert.Empty(t, r.stderr)
			got, err := os.ReadFile(marker)
			require.NoError(t, err, "the command did not get the signal")
			assert.Equal(t, strings.TrimPrefix(signalName(sig), "SIG")+"\n", string(got))
			assert.Less(t, r.elapsed, 4*time.Second, "a leftover kept the pipes open")
			assert.Eventually(t, func() bool { return !alive(grandchild) }, 5*time.Second, 20*time.Millisecond,
				"what the command left running must not outlive the lock")

			r = run(t, env, "run", "--no-wait", "fwd", "--", "true")
			assert.Equal(t, 0, r.code, "the lock was not released: %s", r.stderr)
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
	require.NoError(t, err)
	defer func() { _ = held.Unlock(context.Background()) }()

	p := start(t, env, "run", "--wait", "30s", "busy", "--", "sh", "-c", "echo ran")
	time.Sleep(time.Second) // the tool is waiting by now
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	r := p.wait(t, 10*time.Second)
	oneLineError(t, r, 128+int(syscall.SIGINT), "interrupted by SIGINT while waiting for the lock")
	assert.Empty(t, r.stdout)
	assert.Less(t, r.elapsed, 10*time.Second)
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
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		fence, err := strconv.ParseUint(strings.TrimSpace(r.stdout), 10, 64)
		require.NoError(t, err, "LOCK_FENCE=%q", r.stdout)
		assert.Greater(t, fence, last)
		last = fence
	}
	// Without fencing there is no LOCK_FENCE.
	r := run(t, redisEnv(ms), "run", "unfenced", "--", "sh", "-c", `echo "${LOCK_FENCE-unset}"`)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, "unset\n", r.stdout)
}
