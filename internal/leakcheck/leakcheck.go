// Package leakcheck finds goroutines that a package's tests left running,
// for the tests of the root module, which keep to the standard library:
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
//
// Shared fixtures (a server the tests started) are closed first, by the
// functions given to Main.
//
// A goroutine counts as left when it is still there after the tests, and
// again after a grace period for those that are on their way out (a
// timer's callback, a reader closing its connection).
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// grace is how long goroutines get to end after the tests before they
// count as leaked.
const grace = 5 * time.Second

// Main runs the tests, then the closers (in order), and then, if all
// passed, looks for goroutines left; it returns the exit code for os.Exit.
func Main(m *testing.M, closers ...func() error) int {
	code := m.Run()
	for _, c := range closers {
		if err := c(); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck: closing a fixture:", err)
			code = 1
		}
	}
	if code != 0 {
		return code
	}
	if left := Find(grace); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) left running after the tests:\n\n%s\n", len(left), strings.Join(left, "\n\n"))
		return 1
	}
	return 0
}

// Find returns the stacks of the goroutines still running after waiting
// up to d for them to end, but for the caller's, the runtime's and the
// testing package's own.
func Find(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := others()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// others lists every goroutine but this one and those that belong to the
// runtime or the testing package.
func others() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 || ignored(g) { // the first is the caller's
			continue
		}
		out = append(out, g)
	}
	return out
}

// ignored reports whether goroutine g (its stack, as runtime.Stack prints
// it) is one that runs for the whole process and is none of a test's doing.
func ignored(g string) bool {
	for _, s := range []string{
		"testing.(*M).", "testing.tRunner", "testing.(*T).Run", "testing.runTests",
		"runtime.goexit0", "os/signal.signal_recv", "os/signal.loop",
		"runtime.ReadTrace", "runtime/trace.Start",
	} {
		if strings.Contains(g, s) {
			return true
		}
	}
	// A goroutine created by the runtime itself (GC workers and the like)
	// has no frame outside package runtime.
	for line := range strings.Lines(g) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "/") {
			continue
		}
		if !strings.HasPrefix(line, "runtime.") && !strings.HasPrefix(line, "created by runtime.") {
			return false
		}
	}
	return true
}
