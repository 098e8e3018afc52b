//go:build !unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// Without Unix signals or process groups the command can only be killed.

func setupChild(*exec.Cmd, int) {}

func signalChild(cmd *exec.Cmd, sig os.Signal, _ int) error {
	if sig == os.Interrupt {
		if err := cmd.Process.Signal(sig); err == nil {
			return nil
		}
	}
	return cmd.Process.Kill()
}

func killGroup(int) error { return nil }

func exitStatus(ps *os.ProcessState) int { return ps.ExitCode() }

func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}

// isTerminal: a character device is taken for a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
