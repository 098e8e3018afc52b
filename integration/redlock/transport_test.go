package redlock_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/redlock"
)

// waitSubscribed waits until every one of masters has a subscriber to
// key's released channel.
func waitSubscribed(t *testing.T, n int, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range masters(t, n) {
			r, err := redis.Values(m.Do(t.Context(), "PUBSUB", "NUMSUB", redlock.ReleasedChannel+key))
			if err != nil || len(r) != 2 {
				return false
			}
			if c, _ := redis.Int(r[1], nil); c == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "the waiter never subscribed to %q's releases", key)
}

// TestWokenByRelease: a caller of another Client (another process) that
// waits for a held key, with a retry delay far longer than the test, gets
// it as soon as the holder unlocks: the release is announced through the
// masters. With a release that is not announced (the Silent variant) the
// same waiter sleeps through its delay and the test catches it.
func TestWokenByRelease(t *testing.T) {
	for _, broken := range []bool{false, true} {
		t.Run(map[bool]string{false: "announced", true: "broken"}[broken], func(t *testing.T) {
			flush(t, 3)
			addrs := addrsOf(t, 3)
			var holderOpts []redlock.Option
			if broken {
				holderOpts = append(holderOpts, silent())
			}
			holder := newClient(t, addrs, holderOpts...)
			waiter := newClient(t, addrs, redlock.WithRetryCount(-1), redlock.WithRetryDelay(time.Minute), redlock.WithRetryJitter(0))
			lk, err := holder.Lock(t.Context(), "k", 30*time.Second)
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			got := make(chan error, 1)
			go func() {
				l, err := waiter.Lock(ctx, "k", 30*time.Second)
				if err == nil {
					err = l.Unlock(context.Background())
				}
				got <- err
			}()
			waitSubscribed(t, 3, "k")
			require.NoError(t, lk.Unlock(t.Context()))
			err = <-got
			if broken {
				require.ErrorIs(t, err, context.DeadlineExceeded, "woken without an announcement?")
				return
			}
			require.NoError(t, err, "the waiter was not woken by the release")
		})
	}
}

// TestLocalLine: callers of one Client waiting for the same key get it in
// the order they came, each woken by the previous one's Unlock, and each
// handover costs about one acquisition's commands: no stampede.
func TestLocalLine(t *testing.T) {
	const n, waiters = 3, 6
	flush(t, n)
	c := newClient(t, addrsOf(t, n), redlock.WithRetryCount(-1), redlock.WithRetryDelay(time.Minute), redlock.WithRetryJitter(0))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first, err := c.Lock(ctx, "k", 30*time.Second)
	require.NoError(t, err)

	order := make(chan int, waiters)
	done := make(chan error, waiters)
	for i := range waiters {
		go func() {
			l, err := c.Lock(ctx, "k", 30*time.Second)
			if err == nil {
				order <- i
				err = l.Unlock(ctx)
			}
			done <- err
		}()
		if i == 0 {
			waitSubscribed(t, n, "k")
		}
		time.Sleep(20 * time.Millisecond) // let it take its place in line
	}
	before := commands(t, n)
	require.NoError(t, first.Unlock(ctx))
	for range waiters {
		require.NoError(t, <-done)
	}
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5}, got, "not first come, first served")
	// A handover: N SETs, and N releases of 3 commands each (EVALSHA, GET,
	// DEL) plus one PUBLISH. Allow one stray attempt in all.
	perHandover := n + 3*n + 1
	assert.LessOrEqual(t, commands(t, n)-before, (waiters+1)*perHandover+n, "more commands than handovers need")
	noKeys(t, n)
}

// commands is the masters' total_commands_processed, less the INFO calls
// that read it.
func commands(t *testing.T, n int) int {
	t.Helper()
	total := 0
	for _, m := range masters(t, n) {
		info, err := redis.String(m.Do(t.Context(), "INFO", "stats"))
		require.NoError(t, err)
		total += infoField(t, info, "total_commands_processed")
	}
	return total
}

func addrsOf(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, m := range masters(t, n) {
		out = append(out, m.Addr())
	}
	return out
}

// infoField reads an integer field of an INFO reply.
func infoField(t *testing.T, info, field string) int {
	t.Helper()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

// TestObserverNodes: with one master, every request is one KindNode event,
// with the master's address and the request's name; a refused Lock shows
// the master's "taken".
func TestObserverNodes(t *testing.T) {
	flush(t, 1)
	m := masters(t, 1)[0]
	var (
		mu  sync.Mutex
		ops []string
	)
	obs := lock.ObserverFunc(func(e lock.Event) {
		if e.Kind != lock.KindNode {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, m.Addr(), e.Addr)
		outcome := "yes"
		if e.Err != nil {
			outcome = e.Err.Error()
		}
		ops = append(ops, e.Op+":"+outcome)
	})
	c := newClient(t, []string{m.Addr()}, redlock.WithObserver(obs), redlock.WithNodeNames(m.Addr()), redlock.WithRetryCount(0), redlock.WithFencing(true))
	lk, err := c.Lock(t.Context(), "k", time.Second)
	require.NoError(t, err)
	_, err = c.Lock(t.Context(), "k", time.Second)
	require.Error(t, err)
	lk, err = lk.Extend(t.Context(), time.Second)
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(t.Context()))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"acquire:yes", "fence:yes", "acquire:held by another owner", "extend:yes", "release:yes"}, ops)
}
