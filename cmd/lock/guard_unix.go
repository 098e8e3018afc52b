//go:build unix

package main

// If lock dies (SIGKILL, the OOM killer, a crash), nothing extends the
// lock any more, and nothing stops the command: Linux's parent-death
// signal reaches the command alone, not what it started, and other systems
// have none. The lock expires and a second holder starts while the first
// one's work goes on. So before the command starts, lock starts a
// guardian: itself again, in a session of its own, holding the read end of
// a pipe from lock. The pipe closes when lock exits, however it exits; if
// lock has not said "done" by then, the guardian SIGKILLs the command's
// process group, milliseconds after lock's death, well inside the lock's
// validity.
//
// The guardian must know the group before anything can join it, or lock
// could die between starting the command and telling the guardian which
// group to kill, with the command already forking. So the group is made
// first, by an anchor (lock again, doing nothing), whose process group the
// command joins: the guardian learns its id before the command exists.
// Once the command runs, the anchor exits; the group lives on with the
// command, and its id cannot be reused while any member lives.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	lock "github.com/leverege/lock"
)

const (
	// The names lock runs the guardian and the anchor under, as os.Args[0]
	// (what ps shows): not subcommands, so that neither is in the help nor
	// can be typed by mistake.
	guardianName = "lock-guardian"
	anchorName   = "lock-group-anchor"

	// guardianHello is the guardian's first words: it runs this protocol,
	// and it ignores the signals it must survive.
	guardianHello = "lock-guardian 1\n"
	// helloTimeout bounds the wait for guardianHello: a Go binary starts in
	// milliseconds, so this long means something is wrong.
	helloTimeout = 10 * time.Second
	// killFor bounds the guardian's repeated kills (see killAll).
	killFor = time.Second
	// exitWait bounds lock's wait for the guardian and the anchor to exit
	// once told to; past it, they are killed.
	exitWait = 2 * time.Second
)

// The guardian and the anchor are dispatched before main: they need
// nothing of the tool, and the guardian must ignore signals as early as
// it can.
func init() {
	switch os.Args[0] {
	case guardianName:
		os.Exit(guardianMain(os.Stdin, os.NewFile(3, "hello")))
	case anchorName:
		os.Exit(anchorMain(os.Stdin))
	}
}

// guard is lock's side of the guardian, and of the anchor while it runs.
type guard struct {
	pgid int // the command's process group; 0: the command shares lock's

	guardian *exec.Cmd
	ctl      *os.File      // the guardian's stdin: "kill N", then "done"
	gone     chan struct{} // closed once the guardian has exited
	warn     io.Writer     // lock's stderr

	anchor     *exec.Cmd // nil when the command shares lock's group
	anchorIn   *os.File  // closing it lets the anchor exit
	anchorGone chan struct{}

	mu        sync.Mutex
	armed     bool // the guardian said hello: from now on it must not exit
	dismissed bool // "done" sent, or being sent: the guardian may exit
	released  bool // the anchor was let go
}

// newGuard starts the guardian and, if ownGroup, the anchor of the
// command's new process group. It fails rather than let the command run
// unguarded.
func newGuard(ownGroup bool, warn io.Writer) (*guard, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the guardian: finding lock's own executable: %v", err)
	}
	return startGuard(exe, ownGroup, warn)
}

// selfExe is the file to re-execute lock from. On Linux, /proc/self/exe
// stays this very binary even if its file was replaced or removed since
// lock started (an upgrade), where os.Executable's path could name another
// build.
func selfExe() (string, error) {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/proc/self/exe"); err == nil {
			return "/proc/self/exe", nil
		}
	}
	return os.Executable()
}

// startGuard is newGuard with the executable given.
func startGuard(exe string, ownGroup bool, warn io.Writer) (*guard, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the guardian: %v", err)
	}
	helloR, helloW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("cannot start the guardian: %v", err)
	}
	defer helloR.Close()
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{guardianName},
		Stdin:      ctlR,
		ExtraFiles: []*os.File{helloW}, // fd 3
		// Stdout and stderr are /dev/null: the guardian outlives lock
		// when lock dies, and must not keep the caller's pipes open
		// (out=$(lock run ...) would wait for it). Its directory is /,
		// so that it keeps no file system busy.
		Dir: "/",
		// LOCK_CONFIG, which may hold passwords, stays with lock.
		Env: helperEnv(),
		// A session of its own: no signal to lock's process group, no
		// Ctrl-C or hangup of a terminal reaches it. And no parent-death
		// signal: it is there for when lock dies.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	ctlR.Close()
	helloW.Close()
	if err != nil {
		ctlW.Close()
		return nil, fmt.Errorf("cannot start the guardian: %v", err)
	}
	g := &guard{guardian: cmd, ctl: ctlW, gone: make(chan struct{}), warn: warn}
	go g.watch()

	hello := make([]byte, len(guardianHello))
	_ = helloR.SetReadDeadline(time.Now().Add(helloTimeout))
	if _, err := io.ReadFull(helloR, hello); err != nil || string(hello) != guardianHello {
		g.close()
		if err == nil {
			err = fmt.Errorf("it said %q", hello)
		}
		return nil, fmt.Errorf("cannot start the guardian (%s): no answer: %v", exe, err)
	}
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	if !ownGroup {
		return g, nil
	}

	anchorR, anchorW, err := os.Pipe()
	if err != nil {
		g.close()
		return nil, fmt.Errorf("cannot make the command's process group: %v", err)
	}
	anchor := &exec.Cmd{
		Path:        exe,
		Args:        []string{anchorName},
		Stdin:       anchorR,
		Dir:         "/",
		Env:         helperEnv(),
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	// Start returns once the anchor has exec'd, so its process group
	// exists by then.
	err = anchor.Start()
	anchorR.Close()
	if err != nil {
		anchorW.Close()
		g.close()
		return nil, fmt.Errorf("cannot make the command's process group: %v", err)
	}
	g.anchor, g.anchorIn, g.pgid = anchor, anchorW, anchor.Process.Pid
	g.anchorGone = make(chan struct{})
	go func() {
		_ = anchor.Wait()
		close(g.anchorGone)
	}()
	if err := g.send(fmt.Sprintf("kill %d\n", -g.pgid)); err != nil {
		g.close()
		return nil, fmt.Errorf("cannot tell the guardian the command's process group: %v", err)
	}
	return g, nil
}

// watch reaps the guardian, and warns if it exits while it guards.
func (g *guard) watch() {
	err := g.guardian.Wait()
	g.mu.Lock()
	unexpected := g.armed && !g.dismissed
	g.mu.Unlock()
	close(g.gone)
	if unexpected {
		if err == nil {
			err = errors.New("exited")
		}
		fmt.Fprintf(g.warn, "lock: warning: the guardian (pid %d) is gone (%v): if lock dies now, the command's processes may outlive the lock\n",
			g.guardian.Process.Pid, err)
	}
}

func (g *guard) send(msg string) error {
	_, err := g.ctl.WriteString(msg)
	return err
}

// started is called once the command runs, with its pid. In a process
// group of its own, the command now keeps the group alive, and the anchor
// can go. In lock's group, the guardian can only kill the command itself:
// it learns its pid now (Linux's parent-death signal covers the moment
// before).
func (g *guard) started(pid int) {
	if g.anchor != nil {
		g.release()
		return
	}
	if err := g.send(fmt.Sprintf("kill %d\n", pid)); err != nil {
		fmt.Fprintf(g.warn, "lock: warning: cannot tell the guardian the command's pid: %v\n", err)
	}
}

// release lets the anchor exit.
func (g *guard) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.anchor != nil && !g.released {
		g.released = true
		g.anchorIn.Close()
	}
}

// dismiss tells the guardian that nothing is left to kill: the command has
// exited and its group was killed. The lock is released after.
func (g *guard) dismiss() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dismissed {
		return
	}
	g.dismissed = true
	_ = g.send("done\n") // if the guardian is gone, watch said so
	g.ctl.Close()
}

// close dismisses the guardian if the command never ran, lets the anchor
// go, and waits for both to exit.
func (g *guard) close() {
	g.dismiss()
	g.release()
	for _, p := range []struct {
		cmd  *exec.Cmd
		gone chan struct{}
	}{{g.guardian, g.gone}, {g.anchor, g.anchorGone}} {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.gone:
		case <-time.After(exitWait):
			_ = p.cmd.Process.Kill()
			<-p.gone
		}
	}
}

// guardianMain is the guardian: it reads what lock tells it on ctl until
// "done" or the end, which without "done" means that lock died; then it
// kills the target it was given.
func guardianMain(ctl io.Reader, hello *os.File) int {
	// Ignored, not caught, so that they cannot stop it even before it
	// would handle them. Only SIGKILL (or SIGSTOP) can.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if hello == nil {
		return 2
	}
	// Fails when fd 3 is not lock's pipe (someone ran lock-guardian by
	// hand), or when lock is already gone, before it started anything.
	if _, err := hello.WriteString(guardianHello); err != nil {
		return 2
	}
	hello.Close()
	target := 0 // as for kill(2): a pid, or minus a process group id
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "done":
			return 0
		case "kill":
			// Never 0, -1 or 1: they mean our own group, every process
			// we may signal, and init.
			if n, err := strconv.Atoi(arg); err == nil && target == 0 && (n > 1 || n < -1) {
				target = n
			}
		}
	}
	if target != 0 {
		killAll(target)
	}
	return 0
}

// killAll sends SIGKILL to target until none is left, or for killFor at
// most. Once is not always enough: a process may be forking as the signal
// comes (Linux kills the new child too, other kernels may not), and the
// command may be joining the group between fork and exec (it can join only
// while the group has members, so a group found empty stays empty). The
// bound is for killed processes that wait to be reaped: a zombie still
// counts as a member, and some inits are slow to reap orphans, or never do.
func killAll(target int) {
	deadline := time.Now().Add(killFor)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		if err := syscall.Kill(target, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
	}
}

// anchorMain is the anchor: it leads the process group that the command
// joins, and waits, its signals ignored so that nothing but SIGKILL ends
// the group before the command has joined, until lock closes its stdin or
// dies.
func anchorMain(in io.Reader) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// helperEnv is the environment of the guardian and the anchor: lock's,
// without LOCK_CONFIG, which may hold passwords (the guardian outlives lock
// when lock dies).
func helperEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, lock.EnvVar+"=") {
			out = append(out, kv)
		}
	}
	return out
}
