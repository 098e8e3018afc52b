package redistest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// serverProcAttr makes the kernel kill a redis-server when the test binary
// dies without cleaning up (a signal, a timeout panic), so that no server
// outlives a run.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// waitStopped returns once the process is in the stopped state ("T" in
// /proc/PID/stat): SIGSTOP is delivered asynchronously, and a test that
// pauses a server must not race its last commands.
func waitStopped(ctx context.Context, pid int) error {
	const interval = time.Millisecond
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	for range 2000 {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// The state follows the command name, which is in parentheses and
		// may itself hold spaces or parentheses: take the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			if st := b[i+2]; st == 'T' || st == 't' {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return fmt.Errorf("process %d did not stop after SIGSTOP", pid)
}
