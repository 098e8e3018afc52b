//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// setupChild puts the command in process group pgid, made for it, so that
// signals reach whatever it starts too; with pgid 0 it stays in ours, as
// when it shares our terminal (a process group that is not the terminal's
// foreground group cannot read from it).
func setupChild(cmd *exec.Cmd, pgid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: pgid != 0, Pgid: pgid}
	setParentDeathSignal(cmd.SysProcAttr)
}

// signalChild sends sig to the command's process group pgid, or to the
// command alone when pgid is 0.
func signalChild(cmd *exec.Cmd, sig os.Signal, pgid int) error {
	s, ok := sig.(syscall.Signal)
	if pgid == 0 || !ok {
		return cmd.Process.Signal(sig)
	}
	return syscall.Kill(-pgid, s)
}

// killGroup sends SIGKILL to what is left of process group pgid, if the
// command has one.
func killGroup(pgid int) error {
	if pgid == 0 {
		return nil
	}
	return syscall.Kill(-pgid, syscall.SIGKILL)
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
