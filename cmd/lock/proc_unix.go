//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// setupChild gives the command a process group of its own, so that signals
// reach whatever it starts too, unless it shares our terminal (a process
// group that is not the terminal's foreground group cannot read from it).
func setupChild(cmd *exec.Cmd, ownGroup bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	setParentDeathSignal(cmd.SysProcAttr)
}

// signalChild sends sig to the command, or to its process group.
func signalChild(cmd *exec.Cmd, sig os.Signal, ownGroup bool) error {
	s, ok := sig.(syscall.Signal)
	if !ownGroup || !ok {
		return cmd.Process.Signal(sig)
	}
	return syscall.Kill(-cmd.Process.Pid, s)
}

// killGroup sends SIGKILL to what is left of the command's process group.
func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// exitStatus is the command's status as a shell reports it: 128+N when it
// died of signal N.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}
