//go:build unix && !linux

package main

import "syscall"

// setParentDeathSignal: only Linux can kill the command when lock dies.
func setParentDeathSignal(*syscall.SysProcAttr) {}
