package integration

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// ---------------------------------------------------------------------------
// Against a local echo upstream: exact socket-level behaviour, no Docker.

// echoServer echoes every connection and counts what it receives.
type echoServer struct {
	ln       net.Listener
	received atomic.Int64 // bytes read from all connections
	open     atomic.Int64 // connections currently open
	accepted atomic.Int64 // connections accepted so far

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &echoServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.open.Add(1)
			s.accepted.Add(1)
			s.wg.Go(func() {
				defer s.open.Add(-1)
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					_ = c.Close()
				}()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.received.Add(int64(n))
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) Addr() string { return s.ln.Addr().String() }

// dropConns closes every open connection (FIN), leaving the listener up.
func (s *echoServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Close closes the listener and every connection and waits for the server's
// goroutines. It is idempotent.
func (s *echoServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within d. It returns the
// bytes read, the time taken and the error.
func roundTrip(c net.Conn, msg string, d time.Duration) (string, time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(d))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", time.Since(start), err
	}
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), time.Since(start), err
}

func requireEcho(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	got, elapsed, err := roundTrip(c, msg, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	return elapsed
}

// requireSilent asserts that a round trip gets nothing back and no error
// other than the deadline, which must not come early.
func requireSilent(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, elapsed, err := roundTrip(c, msg, 200*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "want only silence, got %q", got)
	require.Empty(t, got)
	require.GreaterOrEqual(t, elapsed, 180*time.Millisecond)
}

// requireClosed asserts that a read on c, with nothing written, fails at once
// with want (io.EOF for FIN, syscall.ECONNRESET for RST).
func requireClosed(t *testing.T, c net.Conn, want error) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(time.Second))
	n, err := c.Read(make([]byte, 16))
	require.Zero(t, n)
	require.ErrorIs(t, err, want)
	require.Less(t, time.Since(start), 100*time.Millisecond)
}

// requireReset asserts that a new connection to addr is reset at once: the
// dial itself or the first read fails with ECONNRESET.
func requireReset(t *testing.T, addr string) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(start.Add(time.Second))
		_, err = c.Read(make([]byte, 16))
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
	require.Less(t, time.Since(start), 100*time.Millisecond)
}

// TestProxyLocal drives every fault against a local echo server. Not
// parallel: it checks for leaked goroutines at the end.
func TestProxyLocal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := newEchoServer(t)
	defer up.Close() // before goleak; t.Cleanup would run after it
	p, err := NewProxy(up.Addr())
	require.NoError(t, err)
	defer p.Close()
	addr := p.Addr()
	require.Regexp(t, `^127\.0\.0\.1:[1-9][0-9]*$`, addr)
	require.Equal(t, up.Addr(), p.Upstream())
	_, err = NewProxy("no-port")
	require.Error(t, err)

	a := dialRaw(t, addr)
	requireEcho(t, a, "hello")
	idle := dialRaw(t, addr) // opened before the faults, unused during them
	requireEcho(t, idle, "idle")
	require.Equal(t, 2, p.Conns())

	t.Run("Blackhole", func(t *testing.T) {
		t.Cleanup(func() { _ = p.Heal() })
		require.NoError(t, p.Blackhole())
		require.NoError(t, p.Blackhole(), "twice is a no-op")
		before := up.received.Load()
		requireSilent(t, a, "lost")
		// A new connection is accepted, then silent as well.
		b := dialRaw(t, addr)
		requireSilent(t, b, "lost too")
		// Nothing reached the upstream: requests are dropped, not just replies.
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, before, up.received.Load())
		require.Equal(t, 3, p.Conns())

		require.NoError(t, p.Heal())
		// Existing connections carry data again; what was sent during the
		// blackhole is gone, not delivered late.
		got, _, err := roundTrip(a, "again", 2*time.Second)
		require.NoError(t, err)
		require.Equal(t, "again", got)
		requireEcho(t, b, "b back")
		requireEcho(t, idle, "still open") // Heal did not close it
		requireEcho(t, dialRaw(t, addr), "new")
		require.Equal(t, addr, p.Addr())
	})

	t.Run("BlackholeHoldsClose", func(t *testing.T) {
		t.Cleanup(func() { _ = p.Heal() })
		c := dialRaw(t, addr)
		requireEcho(t, c, "x")
		require.NoError(t, p.Blackhole())
		up.dropConns() // the upstream closes every connection (FIN)
		requireSilent(t, c, "y")
		requireSilent(t, idle, "z")
		require.NoError(t, p.Heal())
		// The held FIN arrives now.
		requireClosed(t, c, io.EOF)
		requireClosed(t, idle, io.EOF)
		requireClosed(t, a, io.EOF)
		// Half-closed, like a direct connection, until the client closes
		// (links of earlier subtests may take a moment to go away).
		require.Eventually(t, func() bool { return p.Conns() == 3 }, 2*time.Second, 10*time.Millisecond)
		for _, conn := range []net.Conn{c, idle, a} {
			require.NoError(t, conn.Close())
		}
		require.Eventually(t, func() bool { return p.Conns() == 0 }, 2*time.Second, 10*time.Millisecond)
		requireEcho(t, dialRaw(t, addr), "fresh")
	})

	t.Run("HalfClose", func(t *testing.T) {
		c := dialRaw(t, addr)
		_, err := c.Write([]byte("abc"))
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c) // the echo, then EOF once the server closes
		require.NoError(t, err)
		require.Equal(t, "abc", string(b))
	})

	t.Run("Reset", func(t *testing.T) {
		t.Cleanup(func() { _ = p.Heal() })
		c := dialRaw(t, addr)
		requireEcho(t, c, "before")
		d := dialRaw(t, addr)
		requireEcho(t, d, "before")
		// Links the previous subtests closed go away asynchronously.
		require.Eventually(t, func() bool { return p.Conns() == 2 }, 2*time.Second, 10*time.Millisecond)
		require.NoError(t, p.Reset())
		require.NoError(t, p.Reset(), "twice is a no-op")

		// Open connections are reset at once, with nothing sent on them.
		requireClosed(t, c, syscall.ECONNRESET)
		requireClosed(t, d, syscall.ECONNRESET)
		require.Zero(t, p.Conns())
		require.Eventually(t, func() bool { return up.open.Load() == 0 }, 2*time.Second, 10*time.Millisecond,
			"the upstream side of every connection should be closed")
		// New connections are reset as soon as they are accepted, and the
		// upstream is not even dialled.
		before := up.accepted.Load()
		requireReset(t, addr)
		requireReset(t, addr)
		require.Equal(t, before, up.accepted.Load())

		// Blackhole replaces Reset: a new connection hangs, it is not reset.
		require.NoError(t, p.Blackhole())
		h := dialRaw(t, addr)
		requireSilent(t, h, "hang")
		// And Reset replaces Blackhole: the hanging connection is reset.
		require.NoError(t, p.Reset())
		requireClosed(t, h, syscall.ECONNRESET)
		requireReset(t, addr)

		require.NoError(t, p.Heal())
		requireEcho(t, dialRaw(t, addr), "back")
	})

	t.Run("Latency", func(t *testing.T) {
		t.Cleanup(func() { _ = p.Heal() })
		c := dialRaw(t, addr)
		require.Less(t, requireEcho(t, c, "fast"), 100*time.Millisecond)
		require.NoError(t, p.Latency(150*time.Millisecond))
		require.GreaterOrEqual(t, requireEcho(t, c, "slow"), 150*time.Millisecond, "existing connection")
		n := dialRaw(t, addr)
		require.GreaterOrEqual(t, requireEcho(t, n, "slow new"), 150*time.Millisecond, "new connection")
		require.NoError(t, p.Latency(300*time.Millisecond), "replaces 150ms")
		require.GreaterOrEqual(t, requireEcho(t, c, "slower"), 300*time.Millisecond)
		require.NoError(t, p.Latency(0), "removes it")
		require.Less(t, requireEcho(t, c, "fast again"), 100*time.Millisecond)

		// A reply already waiting is released when the latency goes.
		require.NoError(t, p.Latency(time.Hour))
		start := time.Now()
		_, err := c.Write([]byte("held"))
		require.NoError(t, err)
		time.AfterFunc(100*time.Millisecond, func() { _ = p.Heal() })
		buf := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "held", string(buf))
		require.Less(t, time.Since(start), time.Second)
		require.GreaterOrEqual(t, time.Since(start), 90*time.Millisecond)
		require.Less(t, requireEcho(t, c, "healed"), 100*time.Millisecond)
		require.Error(t, p.Latency(-time.Second))
	})

	t.Run("Close", func(t *testing.T) {
		c := dialRaw(t, addr)
		requireEcho(t, c, "last")
		require.NoError(t, p.Close())
		require.NoError(t, p.Close(), "idempotent")
		// The open connection is closed, the port no longer listens.
		requireClosed(t, c, io.EOF)
		_, err := net.DialTimeout("tcp", addr, time.Second)
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.ErrorIs(t, p.Blackhole(), ErrProxyClosed)
		require.ErrorIs(t, p.Reset(), ErrProxyClosed)
		require.ErrorIs(t, p.Latency(time.Millisecond), ErrProxyClosed)
		require.ErrorIs(t, p.Heal(), ErrProxyClosed)
		require.Zero(t, p.Conns())
		require.Eventually(t, func() bool { return up.open.Load() == 0 }, 2*time.Second, 10*time.Millisecond,
			"the proxy's upstream connections should be closed")
	})
}

// TestProxyUpstreamDown: with nothing listening upstream, connections are
// reset, except during a blackhole, where they stay silent until it ends.
func TestProxyUpstreamDown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close())

	p, err := NewProxy(down)
	require.NoError(t, err)
	defer p.Close()
	requireReset(t, p.Addr())

	require.NoError(t, p.Blackhole())
	c := dialRaw(t, p.Addr())
	requireSilent(t, c, "anyone?")
	require.Equal(t, 1, p.Conns())
	require.NoError(t, p.Latency(time.Millisecond)) // still blackholed
	requireSilent(t, c, "anyone?")
	require.NoError(t, p.Heal())
	requireClosed(t, c, syscall.ECONNRESET)
	require.Zero(t, p.Conns())
	require.NoError(t, p.Close())
}

// TestProxyStress toggles every fault while clients hammer the proxy, then
// checks that Close leaves no goroutine behind and that nothing panicked.
// Not parallel: it checks for leaked goroutines.
func TestProxyStress(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := newEchoServer(t)
	defer up.Close() // before goleak; t.Cleanup would run after it
	p, err := NewProxy(up.Addr())
	require.NoError(t, err)

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				for range 5 {
					if _, _, err := roundTrip(c, "ping ping ping", 30*time.Millisecond); err != nil {
						failed.Add(1)
						break
					}
					ok.Add(1)
				}
				_ = c.Close()
			}
		})
	}
	faults := []func() error{
		p.Blackhole, p.Heal, p.Reset, p.Blackhole, p.Reset, p.Heal,
		func() error { return p.Latency(5 * time.Millisecond) }, p.Blackhole, p.Heal,
	}
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		require.NoError(t, faults[i%len(faults)]())
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, p.Heal())
	close(stop)
	wg.Wait()
	t.Logf("round trips: %d ok, %d failed", ok.Load(), failed.Load())
	require.Positive(t, ok.Load())
	require.Positive(t, failed.Load())

	// Still healthy after all that.
	requireEcho(t, dialRaw(t, p.Addr()), "alive")
	require.NoError(t, p.Close())
	require.Eventually(t, func() bool { return up.open.Load() == 0 }, 2*time.Second, 10*time.Millisecond)
}

// ---------------------------------------------------------------------------
// In front of real masters.

// dialVia opens a redigo connection to addr with timeout as connect, read and
// write timeout, the way the library under test dials.
func dialVia(t *testing.T, addr string, timeout time.Duration) (redis.Conn, error) {
	return redis.DialContext(t.Context(), "tcp", addr,
		redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout),
	)
}

// pingVia runs PING on c and returns the error and the time it took.
func pingVia(c redis.Conn) (time.Duration, error) {
	start := time.Now()
	pong, err := redis.String(c.Do("PING"))
	if err == nil && pong != "PONG" {
		err = errors.New("PING answered " + pong)
	}
	return time.Since(start), err
}

func requirePingVia(t *testing.T, addr string) {
	t.Helper()
	c, err := dialVia(t, addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = pingVia(c)
	require.NoError(t, err)
}

// isConnError reports whether err says the connection was closed or reset.
func isConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestProxyRedis(t *testing.T) {
	t.Parallel()
	c := StartT(t, 2)
	ps := c.Proxies(t)
	require.Len(t, ps, 2)
	again := c.Proxies(t)
	require.Same(t, ps[0], again[0], "Proxies returns the same proxies on later calls")
	require.Same(t, ps[1], again[1])
	require.Equal(t, []string{ps[0].Addr(), ps[1].Addr()}, c.ProxyAddrs(t))
	for i, p := range ps {
		require.Equal(t, c.Masters[i].Addr(), p.Upstream())
		require.NotEqual(t, c.Masters[i].Addr(), p.Addr())
		requirePingVia(t, p.Addr())
	}
	p, other := ps[0], ps[1]
	const timeout = 200 * time.Millisecond

	t.Run("Blackhole", func(t *testing.T) {
		t.Cleanup(func() { require.NoError(t, p.Heal()) })
		pool := &redis.Pool{
			Dial:    func() (redis.Conn, error) { return dialVia(t, p.Addr(), timeout) },
			MaxIdle: 4,
		}
		defer pool.Close()
		pc := pool.Get()
		_, err := pingVia(pc)
		require.NoError(t, err)
		require.NoError(t, pc.Close()) // back to the pool
		require.Equal(t, 1, pool.IdleCount())
		idle, err := dialVia(t, p.Addr(), timeout) // unused during the blackhole
		require.NoError(t, err)
		defer idle.Close()
		_, err = pingVia(idle)
		require.NoError(t, err)

		require.NoError(t, p.Blackhole())

		// The pooled connection: the PING hangs until the read deadline.
		pc = pool.Get()
		require.Zero(t, pool.IdleCount(), "the pooled connection is reused")
		elapsed, err := pingVia(pc)
		require.Error(t, err)
		require.True(t, isTimeout(err), "want a timeout, got %v", err)
		require.GreaterOrEqual(t, elapsed, timeout-20*time.Millisecond, "an error before the deadline: %v", err)
		require.Less(t, elapsed, time.Second)
		require.NoError(t, pc.Close())
		t.Logf("pooled connection: %v after %v", err, elapsed)

		// A new connection: the dial succeeds, the PING hangs.
		nc, err := dialVia(t, p.Addr(), timeout)
		require.NoError(t, err, "a blackholed proxy still accepts connections")
		defer nc.Close()
		elapsed, err = pingVia(nc)
		require.Error(t, err)
		require.True(t, isTimeout(err), "want a timeout, got %v", err)
		require.GreaterOrEqual(t, elapsed, timeout-20*time.Millisecond, "an error before the deadline: %v", err)
		require.Less(t, elapsed, time.Second)

		// The other master's proxy is not affected.
		requirePingVia(t, other.Addr())

		require.NoError(t, p.Heal())
		requirePingVia(t, p.Addr())
		pc = pool.Get()
		_, err = pingVia(pc)
		require.NoError(t, err, "the pool dials a new connection after the timed out one was dropped")
		require.NoError(t, pc.Close())
		_, err = pingVia(idle)
		require.NoError(t, err, "a connection idle during the blackhole works after Heal")
	})

	t.Run("Reset", func(t *testing.T) {
		t.Cleanup(func() { require.NoError(t, p.Heal()) })
		existing, err := dialVia(t, p.Addr(), timeout)
		require.NoError(t, err)
		defer existing.Close()
		_, err = pingVia(existing)
		require.NoError(t, err)

		require.NoError(t, p.Reset())

		elapsed, err := pingVia(existing)
		require.Error(t, err)
		require.True(t, isConnError(err), "want EOF or a reset, got %v", err)
		require.False(t, isTimeout(err))
		require.Less(t, elapsed, 100*time.Millisecond)
		t.Logf("existing connection: %v after %v", err, elapsed)

		start := time.Now()
		nc, err := dialVia(t, p.Addr(), timeout)
		if err == nil {
			defer nc.Close()
			_, err = pingVia(nc)
		}
		elapsed = time.Since(start)
		require.ErrorIs(t, err, syscall.ECONNRESET, "a new connection is reset")
		require.Less(t, elapsed, 100*time.Millisecond)
		t.Logf("new connection: %v after %v", err, elapsed)

		requirePingVia(t, other.Addr())
		require.NoError(t, p.Heal())
		requirePingVia(t, p.Addr())
	})

	t.Run("Latency", func(t *testing.T) {
		t.Cleanup(func() { require.NoError(t, p.Heal()) })
		conn, err := dialVia(t, p.Addr(), time.Second)
		require.NoError(t, err)
		defer conn.Close()
		elapsed, err := pingVia(conn)
		require.NoError(t, err)
		require.Less(t, elapsed, 100*time.Millisecond)

		require.NoError(t, p.Latency(150*time.Millisecond))
		elapsed, err = pingVia(conn)
		require.NoError(t, err)
		require.GreaterOrEqual(t, elapsed, 150*time.Millisecond, "existing connection")
		nc, err := dialVia(t, p.Addr(), time.Second)
		require.NoError(t, err)
		defer nc.Close()
		elapsed, err = pingVia(nc)
		require.NoError(t, err)
		require.GreaterOrEqual(t, elapsed, 150*time.Millisecond, "new connection")

		require.NoError(t, p.Heal())
		elapsed, err = pingVia(conn)
		require.NoError(t, err)
		require.Less(t, elapsed, 100*time.Millisecond)
	})

	t.Run("MasterRestart", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[0]
		conn, err := dialVia(t, p.Addr(), time.Second)
		require.NoError(t, err)
		defer conn.Close()
		_, err = pingVia(conn)
		require.NoError(t, err)

		require.NoError(t, m.Stop(ctx))
		// The master closed the connection: so does the proxy.
		_, err = pingVia(conn)
		require.True(t, isConnError(err), "want EOF or a reset, got %v", err)
		_ = conn.Close() // redigo returns the connection's earlier error here
		require.Eventually(t, func() bool { return p.Conns() == 0 }, 2*time.Second, 10*time.Millisecond)
		// A new connection is accepted, fails to reach the master and is reset.
		start := time.Now()
		nc, err := dialVia(t, p.Addr(), time.Second)
		if err == nil {
			defer nc.Close()
			_, err = pingVia(nc)
		}
		require.ErrorIs(t, err, syscall.ECONNRESET)
		require.Less(t, time.Since(start), 500*time.Millisecond)
		require.Zero(t, p.Conns())

		require.NoError(t, m.Start(ctx))
		requirePingVia(t, p.Addr())
		requirePingVia(t, other.Addr())
	})
}
