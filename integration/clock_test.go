package integration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"
)

// TestClockRateExpiry proves WithClockRate on real masters: a master whose
// clock runs 5% fast expires a 2000 ms key after ~1905 ms of real time, a
// normal one after ~2000 ms, and TIME on the fast one advances 5% faster than
// the host's clock, also after a Restart. Not parallel: it measures real time.
func TestClockRateExpiry(t *testing.T) {
	const rate = 1.05
	fast := StartT(t, 1, WithClockRate(rate)).Masters[0]
	normal := StartT(t, 1).Masters[0]
	require.Equal(t, rate, fast.ClockRate())
	require.Equal(t, 1.0, normal.ClockRate())

	const ttl = 2000 * time.Millisecond
	type result struct {
		expiry    time.Duration
		timeRatio float64
		err       error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i, m := range []*Master{fast, normal} {
		wg.Go(func() {
			r := &results[i]
			var err1, err2 error
			var inner sync.WaitGroup
			inner.Go(func() { r.expiry, err1 = measureExpiry(t.Context(), m, "clock:k", ttl) })
			inner.Go(func() { r.timeRatio, err2 = measureTimeRatio(t.Context(), m, time.Second) })
			inner.Wait()
			r.err = errors.Join(err1, err2)
		})
	}
	wg.Wait()
	for i, name := range []string{"fast", "normal"} {
		require.NoError(t, results[i].err, name)
		t.Logf("%s master: a %v key expired after %v of real time; TIME advanced %.4fx the host clock",
			name, ttl, results[i].expiry, results[i].timeRatio)
	}

	// 2000/1.05 = 1904.8 ms. The measurement starts just before SET is sent
	// and ends when the first EXISTS that answers 0 returns (polling every
	// 5 ms), so it overshoots by a few ms at most.
	fastExp, normalExp := results[0].expiry, results[1].expiry
	require.GreaterOrEqual(t, fastExp, 1850*time.Millisecond, "fast master expired the key too early")
	require.LessOrEqual(t, fastExp, 1960*time.Millisecond, "fast master did not expire the key early (is its clock real?)")
	require.GreaterOrEqual(t, normalExp, 1990*time.Millisecond, "normal master expired the key early")
	require.LessOrEqual(t, normalExp, 2060*time.Millisecond, "normal master expired the key late")
	// TIME is sampled over about a second through round trips that a
	// loaded machine can stretch by several milliseconds (1% of the span was
	// seen on the normal master in CI), so this check is coarse; the key
	// expiries above are the precise one.
	require.InDelta(t, rate, results[0].timeRatio, 0.03, "TIME on the fast master")
	require.InDelta(t, 1.0, results[1].timeRatio, 0.03, "TIME on the normal master")
	require.Greater(t, results[0].timeRatio, results[1].timeRatio+0.02, "the fast master's TIME must run ahead of the normal one's")

	// The rate is part of the container's environment: it survives a restart.
	require.NoError(t, fast.Restart(t.Context()))
	ratio, err := measureTimeRatio(t.Context(), fast, time.Second)
	require.NoError(t, err)
	t.Logf("fast master after Restart: TIME advanced %.4fx the host clock", ratio)
	require.InDelta(t, rate, ratio, 0.03, "TIME on the fast master after Restart")
}

func TestWithClockRateRejectsInvalid(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), 2e6} {
		c, err := Start(t.Context(), 1, WithClockRate(rate))
		require.Error(t, err, "rate %v", rate)
		require.Nil(t, c)
		require.Contains(t, err.Error(), "WithClockRate")
	}
}

// measureExpiry sets key with a PX ttl on m and returns the real time until
// the key is gone, polling EXISTS every 5 ms on one connection.
func measureExpiry(ctx context.Context, m *Master, key string, ttl time.Duration) (time.Duration, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	if _, err := redis.String(redis.DoContext(conn, ctx, "SET", key, "v", "PX", ttl.Milliseconds())); err != nil {
		return 0, fmt.Errorf("SET: %w", err)
	}
	deadline := start.Add(2 * ttl)
	for {
		n, err := redis.Int(redis.DoContext(conn, ctx, "EXISTS", key))
		if err != nil {
			return 0, fmt.Errorf("EXISTS: %w", err)
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("key still exists after %v", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// measureTimeRatio returns how much m's TIME advanced over about d, relative
// to the host's clock over the same interval. Each host reading is the
// midpoint of the TIME round trip, the shortest of three, so that one
// round trip stretched by a loaded machine does not skew it.
func measureTimeRatio(ctx context.Context, m *Master, d time.Duration) (float64, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	sample := func() (redisT, hostT time.Time, err error) {
		best := time.Duration(-1)
		for range 3 {
			before := time.Now()
			v, err := redis.Int64s(redis.DoContext(conn, ctx, "TIME"))
			after := time.Now()
			if err != nil {
				return redisT, hostT, fmt.Errorf("TIME: %w", err)
			}
			if len(v) != 2 {
				return redisT, hostT, fmt.Errorf("TIME answered %v", v)
			}
			if rtt := after.Sub(before); best < 0 || rtt < best {
				best = rtt
				redisT, hostT = time.Unix(v[0], v[1]*1000), before.Add(rtt/2)
			}
		}
		return redisT, hostT, nil
	}
	r0, h0, err := sample()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	r1, h1, err := sample()
	if err != nil {
		return 0, err
	}
	return float64(r1.Sub(r0)) / float64(h1.Sub(h0)), nil
}
