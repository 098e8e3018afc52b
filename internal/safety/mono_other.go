//go:build !linux

package safety

import "time"

var start = time.Now()

// Mono reads this process's monotonic clock. On Linux it reads
// CLOCK_MONOTONIC, one clock for every process on the machine; elsewhere
// windows compare only within one process.
func Mono() int64 { return int64(time.Since(start)) }
