//go:build unix && !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package main

import "os"

// isTerminal: a character device other than /dev/null is taken for a
// terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
