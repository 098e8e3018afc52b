//go:build !linux

package benchmarks

import "syscall"

// childAttr: only Linux can tie a child's life to ours; elsewhere TestMain's
// cleanup is all there is.
func childAttr() *syscall.SysProcAttr { return nil }
