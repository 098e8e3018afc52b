package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFencing: tokens are 0 without fencing; with it, every acquisition of
// a key gets a token greater than every earlier one of that key, whoever
// acquired it, and Extend keeps it.
func testFencing(t *testing.T, b Backend) {
	ctx := t.Context()
	plain := newLocker(t, b, Opts{})
	lk, err := plain.Lock(ctx, "f", time.Second)
	require.NoError(t, err)
	assert.Zero(t, lk.Token(), "a token without fencing")
	require.NoError(t, lk.Unlock(ctx))

	a := newLocker(t, b, Opts{Fencing: true})
	c := newLocker(t, b, Opts{Fencing: true}) // another client of the same masters
	if b.Separate {
		c = a
	}
	last := map[string]uint64{}
	for i := range 30 {
		l := a
		if i%3 == 2 {
			l = c
		}
		key := fmt.Sprint("f", i%2)
		lk, err := l.Lock(ctx, key, time.Second)
		require.NoError(t, err)
		assert.Greater(t, lk.Token(), last[key], "acquisition %d of %q", i, key)
		last[key] = lk.Token()
		ext, err := lk.Extend(ctx, time.Second)
		require.NoError(t, err)
		assert.Equal(t, lk.Token(), ext.Token(), "Extend changed the token")
		require.NoError(t, lk.Unlock(ctx))
	}

	// Contended: the tokens, in the order the holders had the lock, only
	// grow.
	var (
		mu     sync.Mutex
		tokens []uint64
		wg     sync.WaitGroup
	)
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	waiting := newLocker(t, b, Opts{Fencing: true, Retry: -1, Delay: 5 * time.Millisecond})
	if !b.Separate {
		// Keep counting from where the other clients left off: the
		// counters live on the masters, not in the client.
		lk, err := waiting.Lock(ctx, "f0", time.Second)
		require.NoError(t, err)
		assert.Greater(t, lk.Token(), last["f0"], "a new client restarted the count")
		require.NoError(t, lk.Unlock(ctx))
	}
	for range 4 {
		wg.Go(func() {
			for range 10 {
				lk, err := waiting.Lock(lctx, "fc", time.Second)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				tokens = append(tokens, lk.Token())
				mu.Unlock()
				assert.NoError(t, lk.Unlock(ctx))
			}
		})
	}
	wg.Wait()
	require.Len(t, tokens, 40)
	for i := 1; i < len(tokens); i++ {
		assert.Greater(t, tokens[i], tokens[i-1], "token %d", i)
	}
	assertNoKeys(t, b)
}
