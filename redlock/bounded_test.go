package redlock_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/redlock"
)

// TestBoundedWriteToStuckPeer: a subscription's write to a peer that
// stopped reading (its socket buffers full, as a hung master's become with
// requests of megabytes) is broken after the bound rather than held for as
// long as the write timeout, here none.
func TestBoundedWriteToStuckPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // and never read from
		}
	}()
	conn, err := redis.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
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
		assert.False(t, ok, "a write that cannot have gone through reported success")
	case <-time.After(10 * time.Second):
		t.Fatal("the write is still stuck 10s on, with a bound of 200ms")
	}
}
