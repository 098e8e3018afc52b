package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/redlock"
)

// fencedScript is the protected resource's side of fencing: a store that
// takes a write only with a token at least as large as any it has seen.
var fencedScript = redis.NewScript(1, `
local seen = tonumber(redis.call("HGET", KEYS[1], "token")) or 0
if tonumber(ARGV[1]) < seen then
  return 0
end
redis.call("HSET", KEYS[1], "token", ARGV[1], "data", ARGV[2])
return 1`)

// fencedWrite writes data with token to the fenced resource key on the
// master at addr, and reports whether the resource took it.
func fencedWrite(ctx context.Context, addr, key string, token uint64, data string) (bool, error) {
	conn, err := redis.DialContext(ctx, "tcp", addr, redis.DialConnectTimeout(2*time.Second),
		redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	return redis.Bool(fencedScript.DoContext(ctx, conn, key, token, data))
}

// TestFencedResource (scenario 15): the paused holder of scenario 7 wakes
// after another client took the lock and wrote to a fenced resource, and
// tries to write too. With fencing, its token is smaller than the new
// holder's, and the resource refuses the stale write. Without fencing (the
// negative control) every token is 0, the resource cannot tell, and the
// stale write overwrites the new holder's.
func TestFencedResource(t *testing.T) {
	for _, fencing := range []bool{true, false} {
		t.Run(fmt.Sprintf("fencing=%v", fencing), func(t *testing.T) {
			ms := masters(t, 3)
			resource := fmt.Sprint("resource:", fencing)
			h := startHolder(t, holderSpec{Addrs: addrs(ms), Key: "k", TTL: 300 * time.Millisecond,
				Fencing: fencing, Resource: resource})
			require.NoError(t, h.cmd.Process.Signal(syscall.SIGSTOP))
			c := newClient(t, addrs(ms), redlock.WithFencing(fencing), redlock.WithRetryCount(-1), redlock.WithRetryDelay(10*time.Millisecond))
			lk, err := c.Lock(t.Context(), "k", 5*time.Second)
			require.NoError(t, err)
			ok, err := fencedWrite(t.Context(), ms[0].Addr(), resource, lk.Token(), "new holder")
			require.NoError(t, err)
			require.True(t, ok, "the resource refused the new holder")
			require.NoError(t, h.cmd.Process.Signal(syscall.SIGCONT))
			h.goOn(t)
			data, err := redis.String(ms[0].Do(t.Context(), "HGET", resource, "data"))
			require.NoError(t, err)
			if fencing {
				assert.Greater(t, lk.Token(), h.Token)
				assert.Contains(t, h.Wrote, "accepted=false", "the stale write")
				assert.Equal(t, "new holder", data)
			} else {
				assert.Zero(t, lk.Token())
				assert.Contains(t, h.Wrote, "accepted=true", "negative control: without tokens the stale write goes through")
				assert.Equal(t, "paused holder", data, "negative control")
			}
			require.NoError(t, lk.Unlock(t.Context()))
			report(t, "scenario 15: fencing=%v paused holder's token=%d new holder's=%d stale write: %s; resource holds %q",
				fencing, h.Token, lk.Token(), h.Wrote, data)
		})
	}
}

// TestFencingMonotonicUnderCrashes (scenario 14): contended acquisitions
// of one key by clients with fencing, while masters persisting with AOF
// (appendfsync always) are killed and restarted one at a time: in the
// order the holders had the lock, the tokens only grow.
func TestFencingMonotonicUnderCrashes(t *testing.T) {
	cl := integration.StartT(t, 3, integration.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	ms := cl.Masters
	target := 2000
	if testing.Short() {
		target = 500
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	var (
		mu     sync.Mutex
		tokens []uint64
		wg     sync.WaitGroup
	)
	done := make(chan struct{})
	for range 6 {
		c := newClient(t, addrs(ms), redlock.WithFencing(true), redlock.WithRetryCount(-1),
			redlock.WithRetryDelay(5*time.Millisecond), redlock.WithRetryJitter(5*time.Millisecond))
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-done:
					return
				default:
				}
				lk, err := c.Lock(ctx, "k", 2*time.Second)
				if err != nil {
					continue // a master down at the wrong moment; the loop is bounded by ctx
				}
				mu.Lock()
				tokens = append(tokens, lk.Token())
				n := len(tokens)
				mu.Unlock()
				_ = lk.Unlock(ctx)
				if n >= target {
					select {
					case <-done:
					default:
						close(done)
					}
				}
			}
		})
	}
	crashes := 0
	for ctx.Err() == nil {
		select {
		case <-done:
		case <-time.After(time.Duration(200+rand.IntN(200)) * time.Millisecond):
			m := ms[crashes%3]
			require.NoError(t, m.Kill(t.Context()))
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, m.Start(t.Context()))
			crashes++
			continue
		}
		break
	}
	wg.Wait()
	// A slow machine may not reach the target by the deadline; what is
	// needed is enough acquisitions across enough crashes.
	t.Logf("%d acquisitions, %d crashes", len(tokens), crashes)
	require.GreaterOrEqual(t, len(tokens), min(target, 500), "too few acquisitions in time")
	require.GreaterOrEqual(t, crashes, 5, "too few crashes in time")
	decreases := 0
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			decreases++
			t.Errorf("token %d: %d after %d", i, tokens[i], tokens[i-1])
		}
	}
	report(t, "scenario 14: N=3 AOF always, %d acquisitions, %d master crashes (SIGKILL and restart), tokens 1..%d, %d not increasing",
		len(tokens), crashes, tokens[len(tokens)-1], decreases)
}
