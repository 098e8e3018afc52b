package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// TestFindsLeak: a goroutine left blocked is found, with its stack; once it
// ends, nothing is.
func TestFindsLeak(t *testing.T) {
	if left := Find(time.Second); len(left) != 0 {
		t.Fatalf("Find before any leak = %d goroutines:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	stop := make(chan struct{})
	go leaky(stop)
	left := Find(100 * time.Millisecond)
	if len(left) != 1 || !strings.Contains(left[0], "leakcheck.leaky") {
		t.Fatalf("Find with one goroutine blocked = %q, want one stack naming leaky", left)
	}
	close(stop)
	if left := Find(time.Second); len(left) != 0 {
		t.Fatalf("Find after it ended = %q, want none", left)
	}
}

func leaky(stop chan struct{}) { <-stop }
