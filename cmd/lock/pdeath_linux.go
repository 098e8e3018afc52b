package main

import "syscall"

// setParentDeathSignal has the kernel kill the command if lock itself dies
// (SIGKILL, a crash): nothing would keep the lock alive any more.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
