package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/gomodule/redigo/redis"
	"github.com/leverege/lock/internal/redistest"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain also proves that the harness leaves no goroutines behind (Docker
// HTTP connections, redigo DoContext helpers) once its clusters are closed, so
// test packages that use it can run goleak themselves.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, LeakOptions...)
}

func TestImageFromEnv(t *testing.T) {
	t.Setenv(ImageEnv, "")
	require.Equal(t, DefaultImage, Image())
	t.Setenv(ImageEnv, "redis:7")
	require.Equal(t, "redis:7", Image())
}

// TestStartRetriesTakenPort hands the harness a host port that another process
// holds: the container start fails to bind it and the harness must retry with
// another port. Not parallel: it swaps redistest.FreePort.
func TestStartRetriesTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	orig := redistest.FreePort
	var calls atomic.Int32
	redistest.FreePort = func() (int, error) {
		if calls.Add(1) == 1 {
			return taken, nil
		}
		return orig()
	}
	defer func() { redistest.FreePort = orig }()

	c := StartT(t, 1)
	require.GreaterOrEqual(t, calls.Load(), int32(2), "the taken port should have been tried first")
	require.NotEqual(t, taken, c.Masters[0].Port())
	requirePong(t, c.Masters[0])
}

func TestStartMissingImage(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c, err := Start(t.Context(), 2, WithImage("lock-redis:no-such-tag"))
	require.Error(t, err)
	require.Nil(t, c)
	require.ErrorIs(t, err, ErrImageMissing)
	require.Contains(t, err.Error(), "scripts/redis-image.sh")
	require.Less(t, time.Since(start), 10*time.Second, "a missing image must fail fast, not try to pull")
}

func TestStartRejectsZero(t *testing.T) {
	t.Parallel()
	_, err := Start(t.Context(), 0)
	require.Error(t, err)
}

// requireEmpty asserts that a master holds no keys.
func requireEmpty(t *testing.T, m *Master) {
	t.Helper()
	n, err := redis.Int(m.Do(t.Context(), "DBSIZE"))
	require.NoError(t, err)
	require.Zero(t, n, "master %d should be empty", m.Index)
}

// requireExit asserts that a master's container has exited with code.
func requireExit(t *testing.T, m *Master, code int) {
	t.Helper()
	st, err := m.Container().State(t.Context())
	require.NoError(t, err)
	require.False(t, st.Running, "container still running")
	require.Equal(t, code, st.ExitCode)
}

func requirePong(t *testing.T, m *Master) {
	t.Helper()
	pong, err := redis.String(m.Do(t.Context(), "PING"))
	require.NoError(t, err)
	require.Equal(t, "PONG", pong)
}

func TestHarness(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartT(t, 3)
	t.Logf("started 3 masters in %v", time.Since(start))

	require.Len(t, c.Masters, 3)
	addrs := c.Addrs()
	require.Len(t, addrs, 3)
	seen := map[string]bool{}
	for i, a := range addrs {
		require.True(t, strings.HasPrefix(a, "127.0.0.1:"), "addr %q", a)
		require.Equal(t, a, c.Masters[i].Addr())
		require.Equal(t, fmt.Sprintf("127.0.0.1:%d", c.Masters[i].Port()), a)
		require.False(t, seen[a], "duplicate addr %q", a)
		seen[a] = true
		require.True(t, c.Masters[i].Running())
	}

	t.Run("SetGetEach", func(t *testing.T) {
		ctx := t.Context()
		for i, m := range c.Masters {
			ok, err := redis.String(m.Do(ctx, "SET", "k", fmt.Sprintf("v%d", i)))
			require.NoError(t, err)
			require.Equal(t, "OK", ok)
		}
		// The masters are independent: each holds its own value.
		for i, m := range c.Masters {
			v, err := redis.String(m.Do(ctx, "GET", "k"))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("v%d", i), v)
		}
		// Dial gives a usable connection too.
		conn, err := c.Masters[0].Dial(ctx)
		require.NoError(t, err)
		defer conn.Close()
		v, err := redis.String(redis.DoContext(conn, ctx, "GET", "k"))
		require.NoError(t, err)
		require.Equal(t, "v0", v)
		// A Redis error reply comes back as the error.
		_, err = c.Masters[0].Do(ctx, "INCR", "k")
		var rerr redis.Error
		require.ErrorAs(t, err, &rerr)
	})

	t.Run("StopStartKeepsAddrAndLosesData", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[0]
		addr := m.Addr()
		_, err := m.Do(ctx, "SET", "stop", "x")
		require.NoError(t, err)

		require.NoError(t, m.Stop(ctx))
		require.False(t, m.Running())
		requireExit(t, m, 0) // clean shutdown on SIGTERM
		_, err = m.Do(ctx, "PING")
		require.Error(t, err, "a stopped master must not answer")

		t0 := time.Now()
		require.NoError(t, m.Start(ctx))
		t.Logf("Start after Stop took %v", time.Since(t0))
		require.True(t, m.Running())
		require.Equal(t, addr, m.Addr())
		requirePong(t, m)
		requireEmpty(t, m)
	})

	t.Run("KillStart", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[1]
		addr := m.Addr()
		_, err := m.Do(ctx, "SET", "kill", "x")
		require.NoError(t, err)

		require.NoError(t, m.Kill(ctx))
		require.False(t, m.Running())
		requireExit(t, m, 137) // 128 + SIGKILL
		_, err = m.Do(ctx, "PING")
		require.Error(t, err, "a killed master must not answer")
		require.NoError(t, m.Kill(ctx), "killing a killed master is a no-op")

		require.NoError(t, m.Start(ctx))
		require.Equal(t, addr, m.Addr())
		requirePong(t, m)
		requireEmpty(t, m)
	})

	t.Run("Restart", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[2]
		addr := m.Addr()
		_, err := m.Do(ctx, "SET", "restart", "x")
		require.NoError(t, err)
		require.NoError(t, m.Restart(ctx))
		require.Equal(t, addr, m.Addr())
		requirePong(t, m)
		requireEmpty(t, m)
	})

	t.Run("PauseUnpause", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[2]
		_, err := m.Do(ctx, "SET", "pause", "kept")
		require.NoError(t, err)

		require.NoError(t, m.Pause(ctx))
		require.True(t, m.Paused())
		require.False(t, m.Running())

		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		t0 := time.Now()
		_, err = m.Do(dctx, "GET", "pause")
		elapsed := time.Since(t0)
		cancel()
		require.Error(t, err, "a paused master must not answer")
		require.True(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "want a timeout, got %v", err)
		require.GreaterOrEqual(t, elapsed, 150*time.Millisecond)
		require.Less(t, elapsed, 2*time.Second)

		// FlushAll skips the paused master instead of hanging on it.
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		require.NoError(t, c.FlushAll(fctx))
		cancel()

		require.NoError(t, m.Unpause(ctx))
		require.True(t, m.Running())
		v, err := redis.String(m.Do(ctx, "GET", "pause"))
		require.NoError(t, err)
		require.Equal(t, "kept", v, "pause must keep the data")
	})

	t.Run("KillWhilePaused", func(t *testing.T) {
		ctx := t.Context()
		m := c.Masters[2]
		require.NoError(t, m.Pause(ctx))
		require.NoError(t, m.Kill(ctx))
		require.False(t, m.Running())
		require.False(t, m.Paused())
		requireExit(t, m, 137)
		require.NoError(t, m.Start(ctx))
		requirePong(t, m)
		requireEmpty(t, m)
	})

	t.Run("FlushAll", func(t *testing.T) {
		ctx := t.Context()
		for _, m := range c.Masters {
			for j := range 5 {
				_, err := m.Do(ctx, "SET", fmt.Sprintf("f%d", j), "x")
				require.NoError(t, err)
			}
			n, err := redis.Int(m.Do(ctx, "DBSIZE"))
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 5)
		}
		require.NoError(t, c.FlushAll(ctx))
		for _, m := range c.Masters {
			requireEmpty(t, m)
		}
	})

	t.Run("Args", func(t *testing.T) {
		ctx := t.Context()
		vals, err := redis.Strings(c.Masters[0].Do(ctx, "CONFIG", "GET", "save"))
		require.NoError(t, err)
		require.Equal(t, []string{"save", ""}, vals)
		vals, err = redis.Strings(c.Masters[0].Do(ctx, "CONFIG", "GET", "appendonly"))
		require.NoError(t, err)
		require.Equal(t, []string{"appendonly", "no"}, vals)
	})
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// TestWithArgsAOFAndClose checks that extra arguments reach redis-server (AOF
// with fsync always survives SIGKILL) and that Close removes the containers.
func TestWithArgsAOFAndClose(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := Start(ctx, 1, WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	m := c.Masters[0]
	require.Contains(t, m.Args(), "always")

	_, err = m.Do(ctx, "SET", "durable", "yes")
	require.NoError(t, err)
	require.NoError(t, m.Kill(ctx))
	require.NoError(t, m.Start(ctx))
	v, err := redis.String(m.Do(ctx, "GET", "durable"))
	require.NoError(t, err)
	require.Equal(t, "yes", v, "AOF with appendfsync always must survive SIGKILL")

	id := m.ContainerID()
	cli, err := docker()
	require.NoError(t, err)
	_, err = cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	require.NoError(t, err)

	require.NoError(t, c.Close())
	_, err = cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	require.True(t, cerrdefs.IsNotFound(err), "container should be removed, inspect err = %v", err)
	require.NoError(t, c.Close(), "Close is idempotent")
	require.Error(t, m.Start(ctx), "a terminated master cannot start")
}
