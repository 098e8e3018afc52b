package benchmarks

import "syscall"

// childAttr makes the kernel kill a child (a redis-server, the worker
// process) when the benchmark binary dies without cleaning up (killed by a
// signal, or a timeout panic), so that no server outlives a run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
