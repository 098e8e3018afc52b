package redlock_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/redlock"
)

// TestBoundedWriteToStuckPeer: a subscription's write to a peer that
// stopped reading (its socket buffers full, as a hung master's become with
// requests of megabytes) is broken after the bound rather than held for as
// long as the write timeout, here none.
func TestBoundedWriteToStuckPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen(127.0.0.1:0) err = %v, want nil", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // and never read from
		}
	}()
	conn, err := redis.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial(%s) err = %v, want nil", ln.Addr(), err)
	}
	defer conn.Close()
	peer := <-accepted
	defer peer.Close()
	huge := strings.Repeat("x", 64<<20) // beyond any socket buffers
	done := make(chan bool, 1)
	go func() {
		done <- redlock.Bounded(conn, 200*time.Millisecond, func() bool {
			return conn.Send("SUBSCRIBE", huge) == nil && conn.Flush() == nil
		})
	}()
	select {
	case ok := <-done:
		if ok {
			t.Errorf("Bounded(200ms, a write of 64MiB to a peer that does not read) = true, want false: a write that cannot have gone through reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write is still stuck 10s on, with a bound of 200ms")
	}
}
