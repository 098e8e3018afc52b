package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakOptions make goleak overlook the Docker client's idle HTTP
// connections (net/http keep-alive loops), which testcontainers can leave
// open for a moment after a call; nothing in the library uses net/http, so
// no goroutine of the library's hides behind them.
var LeakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
}

// Shared is one cluster of N masters for a whole test package, started on
// first use, so that the package's tests that need no Redis run without
// Docker. Call Main from TestMain.
type Shared struct {
	N int

	once sync.Once
	c    *Cluster
	err  error
}

// Cluster returns the shared cluster, starting it on first use, and fails t
// when it cannot be started.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s.c, s.err = Start(ctx, s.N)
	})
	if s.err != nil {
		t.Fatalf("these tests need real Redis masters: %v", s.err)
	}
	return s.c
}

// Main runs the package's tests, closes the cluster if it was started, and
// then looks for goroutines the tests left behind. It returns the exit code
// for os.Exit.
func (s *Shared) Main(m *testing.M) int {
	code := m.Run()
	if s.c != nil {
		if err := s.c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the masters:", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(LeakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	return code
}
