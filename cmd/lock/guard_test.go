//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// When lock is SIGKILLed while the command runs, nothing of the command
// survives it: not the command, not a child it waits for, not one it left
// in the background, not an orphan whose parent has exited. All are gone
// within a second of the kill, long before the 3s lock could expire and
// let a second holder in. And the tool's stdout and stderr, pipes here as
// in out=$(lock run ...), reach EOF: nothing left behind holds them.
func TestRunLockKilled(t *testing.T) {
	dir := t.TempDir()
	names := []string{"command", "waited child", "unwaited child", "orphan"}
	var args []string
	for i := range names {
		args = append(args, filepath.Join(dir, strconv.Itoa(i)))
	}
	ready := filepath.Join(dir, "ready")
	script := `echo $$ > "$1"
sleep 30 & w=$!; echo $w > "$2"
sleep 30 & echo $! > "$3"
(sleep 30 & echo $! > "$4")
echo > "$5"
wait $w`
	p := command(nil, append([]string{"run", "--ttl", "3s", "killed", "--", "sh", "-c", script, "sh"}, append(args, ready)...)...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting lock: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = p.cmd.Wait() // killed: an error, and the point
		close(exited)
	}()
	pids := make([]int, len(names))
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-exited
		for _, pid := range pids {
			if pid > 0 && alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	waitFile(t, ready)
	for i, path := range args {
		pids[i] = readPid(t, path)
		if !alive(pids[i]) {
			t.Fatalf("the %s (pid %d) does not run before the kill", names[i], pids[i])
		}
	}
	guardians := childrenNamed(p.cmd.Process.Pid, guardianName)
	if haveProc() && len(guardians) != 1 {
		t.Fatalf("lock has %d guardians, want 1", len(guardians))
	}

	killed := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 lock: %v", err)
	}
	var left []string
	for {
		left = left[:0]
		for i, pid := range pids {
			if alive(pid) {
				left = append(left, fmt.Sprintf("%s (pid %d)", names[i], pid))
			}
		}
		if len(left) == 0 || time.Since(killed) > time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("1s after lock was SIGKILLed, with 2s of its 3s ttl to go, these still run: %s", strings.Join(left, ", "))
	}
	t.Logf("the command and all its descendants were gone %v after the kill", time.Since(killed).Round(time.Millisecond))

	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		t.Errorf("2s after the kill, lock's stdout or stderr is still open: something it started holds them")
	}
	// The guardian, its work done, does not linger either (it may retry
	// for a second while killed processes wait to be reaped).
	for _, pid := range guardians {
		deadline := time.Now().Add(3 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("the guardian (pid %d) still runs 3s after the kill", pid)
		}
	}
}

// On a normal end, lock tells the guardian it is done and waits for it:
// it kills nothing, says nothing, and is gone when lock exits. The anchor
// of the command's group is gone as soon as the command runs.
func TestRunGuardianDismissed(t *testing.T) {
	dir := t.TempDir()
	ready, proceed, child := filepath.Join(dir, "ready"), filepath.Join(dir, "proceed"), filepath.Join(dir, "child")
	// The command's child outlives it, in its group: lock kills it, not
	// the guardian.
	script := `sleep 30 & echo $! > "$3"; echo > "$1"; while [ ! -e "$2" ]; do sleep 0.01; done`
	p := command(nil, "run", "--ttl", "3s", "dismissed", "--", "sh", "-c", script, "sh", ready, proceed, child)
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting lock: %v", err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	waitFile(t, ready)
	lockPid := p.cmd.Process.Pid
	guardians := childrenNamed(lockPid, guardianName)
	if haveProc() {
		if len(guardians) != 1 {
			t.Fatalf("lock has %d guardians, want 1", len(guardians))
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(childrenNamed(lockPid, anchorName)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(childrenNamed(lockPid, anchorName)); n > 0 {
			t.Errorf("%d anchors still run 5s after the command started", n)
		}
	}
	childPid := readPid(t, child)
	if err := os.WriteFile(proceed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t, 30*time.Second)
	if r.code != 0 {
		t.Fatalf("lock run exited %d, want 0; stderr: %s", r.code, r.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if line != "" && !strings.Contains(line, "in-memory lock excludes nothing") {
			t.Errorf("stderr has %q, want only the in-memory warning", line)
		}
	}
	for _, pid := range guardians {
		if alive(pid) {
			t.Errorf("the guardian (pid %d) runs on after lock exited", pid)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(childPid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(childPid) {
		t.Errorf("the command's child (pid %d) outlived lock", childPid)
	}
}

func haveProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// childrenNamed lists the children of pid whose argv[0] is name, on Linux;
// elsewhere, without /proc, none.
func childrenNamed(pid int, name string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": the ppid follows the last ')'.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
		if argv0, _, _ := strings.Cut(string(argv), "\x00"); argv0 == name {
			out = append(out, child)
		}
	}
	return out
}

// A guardian that cannot be started, or that does not answer as one, is an
// error: lock then runs nothing.
func TestGuardianStartFails(t *testing.T) {
	notGuardian, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	for _, tc := range []struct{ exe, want string }{
		{filepath.Join(t.TempDir(), "none"), "cannot start the guardian"},
		{notGuardian, "no answer: EOF"},
	} {
		var warn bytes.Buffer
		g, err := startGuard(tc.exe, true, &warn)
		if err == nil {
			g.close()
			t.Errorf("startGuard(%q) err = nil, want an error", tc.exe)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("startGuard(%q) err = %v, want %q", tc.exe, err, tc.want)
		}
		if warn.Len() > 0 {
			t.Errorf("startGuard(%q) warned %q, want nothing besides the error", tc.exe, warn.String())
		}
	}
}

// The guardian (the test binary re-executed, which dispatches as lock does)
// ignores SIGINT, SIGTERM and SIGHUP; when its pipe from lock closes
// without "done", it kills the command's process group, or the command
// alone if the command shares lock's group; after "done" it kills nothing.
func TestGuardian(t *testing.T) {
	t.Setenv("GORACE", "atexit_sleep_ms=0") // the guardian's exit, in a -race test binary
	exe, err := selfExe()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		ownGroup  bool
		dismissed bool // lock said "done" before the pipe closed
	}{
		{"group, lock died", true, false},
		{"group, done", true, true},
		{"shared group, lock died", false, false},
		{"shared group, done", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			g, err := startGuard(exe, tc.ownGroup, &warn)
			if err != nil {
				t.Fatalf("startGuard: %v", err)
			}
			t.Cleanup(g.close)
			if got := g.pgid != 0; got != tc.ownGroup {
				t.Fatalf("pgid = %d, want a group: %v", g.pgid, tc.ownGroup)
			}
			// The command, with a child: in its group when it has one, and
			// out of the guardian's reach when it shares ours.
			childFile := filepath.Join(t.TempDir(), "child")
			cmd := exec.Command("sh", "-c", `sleep 30 & echo $! > "$1"; wait`, "sh", childFile)
			setupChild(cmd, g.pgid)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			g.started(cmd.Process.Pid)
			child := waitPid(t, childFile) // the shell creates the file, then writes it
			t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
			var waitErr error
			exited := make(chan struct{})
			go func() {
				waitErr = cmd.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = killGroup(g.pgid)
				<-exited
			})

			for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
				if err := g.guardian.Process.Signal(sig); err != nil {
					t.Fatalf("signal %v to the guardian: %v", sig, err)
				}
			}
			select {
			case <-g.gone:
				t.Fatalf("the guardian died of SIGINT, SIGTERM or SIGHUP")
			case <-time.After(200 * time.Millisecond):
			}

			if tc.dismissed {
				g.dismiss()
			} else {
				g.ctl.Close() // as when lock dies
			}
			select {
			case <-exited:
				if tc.dismissed {
					t.Fatalf("the guardian killed the command after done: %v", waitErr)
				}
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
					t.Errorf("the command ended with %v, want SIGKILL", waitErr)
				}
			case <-time.After(time.Second):
				if !tc.dismissed {
					t.Fatalf("the command still runs 1s after lock's pipe to the guardian closed")
				}
			}
			select {
			case <-g.gone:
			case <-time.After(5 * time.Second):
				t.Fatalf("the guardian still runs 5s after its pipe closed")
			}
			if tc.dismissed && warn.Len() > 0 {
				t.Errorf("warned %q after done, want nothing", warn.String())
			}
		})
	}
}
