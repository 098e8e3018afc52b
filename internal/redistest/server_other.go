//go:build unix && !linux

package redistest

import (
	"context"
	"syscall"
	"time"
)

// serverProcAttr: only Linux can tie a child's life to ours; elsewhere the
// cleanup registered by StartServer is all there is.
func serverProcAttr() *syscall.SysProcAttr { return nil }

// waitStopped cannot observe the process state outside Linux: it gives
// SIGSTOP a moment to land.
func waitStopped(ctx context.Context, pid int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}
