package benchmarks

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// TestMain runs the worker process when asked to (see runWorker), and
// otherwise the benchmarks, stopping the masters they started.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(workerEnv); cfg != "" {
		os.Exit(runWorker(cfg))
	}
	code := m.Run()
	stopServers()
	os.Exit(code)
}

var keySeq atomic.Int64

// uniqueKey returns a key no earlier run of this process (nor, by the pid,
// any other live process) has used.
func uniqueKey(name string) string {
	return fmt.Sprintf("bench:%d:%s:%d", os.Getpid(), name, keySeq.Add(1))
}
