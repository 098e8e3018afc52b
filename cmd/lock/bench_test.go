package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/memlock"
)

func TestBenchInMemory(t *testing.T) {
	r := run(t, nil, "bench", "--duration", "1s", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	res := decode[benchResult](t, r.stdout)
	assert.Contains(t, res.Backend, "in-memory")
	assert.Greater(t, res.Acquisitions, int64(10))
	assert.Zero(t, res.Violations)
	assert.Zero(t, res.LostUpdates)
	assert.Greater(t, res.LockWaitMs.Max, 0.0)
	assert.LessOrEqual(t, res.LockWaitMs.P50, res.LockWaitMs.P99)

	// The human report; the progress line is only for terminals.
	r = run(t, nil, "bench", "--duration", "300ms", "--workers", "2", "--keys", "1")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "violations:    0")
	assert.Contains(t, r.stdout, "lost updates:  0")
	assert.NotContains(t, r.stdout, "\r")

	// --count bounds it before --duration does.
	r = run(t, nil, "bench", "--duration", "1m", "--count", "50", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	res = decode[benchResult](t, r.stdout)
	assert.GreaterOrEqual(t, res.Acquisitions, int64(50))
	assert.LessOrEqual(t, res.Acquisitions, int64(50+8))
	assert.Less(t, r.elapsed, 30*time.Second)
}

func TestBenchRedis(t *testing.T) {
	ms := masters(t)
	r := run(t, redisEnv(ms), "bench", "--duration", "1s", "--workers", "4", "--keys", "2", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	res := decode[benchResult](t, r.stdout)
	assert.Contains(t, res.Backend, "redis, 3 master(s)")
	assert.Greater(t, res.Acquisitions, int64(10))
	assert.Zero(t, res.Violations)
	assert.Zero(t, res.LostUpdates)
	assert.Zero(t, res.UnlockErrors)

	// With no quorum nothing is acquired: 69.
	require.NoError(t, ms[0].Pause(t.Context()))
	require.NoError(t, ms[1].Pause(t.Context()))
	r = run(t, redisEnv(ms), "bench", "--duration", "1s", "--workers", "2")
	oneLineError(t, r, exitUnavailable, "no Lock call finished within 1s")
}

// The checks can fail: a Locker that grants every Lock gives overlapping
// windows and lost updates, and the verdict is exit status 1.
func TestBenchCatchesBrokenLock(t *testing.T) {
	o := benchOpts{workers: 4, keys: 1, duration: 300 * time.Millisecond, hold: time.Millisecond, ttl: time.Second, count: 1000}
	res, err := runBench(context.Background(), grantAll{}, o, new(benchStats))
	require.NoError(t, err)
	assert.Greater(t, res.Acquisitions, int64(0))
	assert.Greater(t, res.Violations, 0)
	assert.NotEmpty(t, res.ViolationExamples)
	assert.Greater(t, res.LostUpdates, int64(0))
	err = benchVerdict(res, o)
	var ex *exitError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, exitCheckFailed, ex.code)
	assert.Contains(t, err.Error(), "mutual exclusion violated")

	// The same workload on a real lock passes.
	m, err := memlock.New(memlock.WithRetry(-1))
	require.NoError(t, err)
	l := lock.InMemory(m)
	defer l.Destroy()
	res, err = runBench(context.Background(), l, o, new(benchStats))
	require.NoError(t, err)
	assert.Greater(t, res.Acquisitions, int64(0))
	assert.Zero(t, res.Violations)
	assert.Zero(t, res.LostUpdates)
	assert.NoError(t, benchVerdict(res, o))
}

// grantAll is a broken Locker: every Lock succeeds. It embeds the
// interfaces (nil) only to keep up with methods the bench does not call.
type grantAll struct{ lock.Locker }

func (grantAll) Lock(_ context.Context, key string, ttl time.Duration) (lock.Lock, error) {
	return grant{key: key, exp: time.Now().Add(ttl)}, nil
}
func (g grantAll) LockNs(ctx context.Context, key string, ttl time.Duration) (lock.Lock, error) {
	return g.Lock(ctx, key, ttl)
}
func (grantAll) Destroy() error { return nil }

type grant struct {
	lock.Lock
	key string
	exp time.Time
}

func (g grant) Key() string                  { return g.key }
func (g grant) Value() string                { return "v" }
func (g grant) Expiration() time.Time        { return g.exp }
func (g grant) Token() uint64                { return 0 }
func (g grant) Unlock(context.Context) error { return nil }
func (g grant) Extend(_ context.Context, ttl time.Duration) (lock.Lock, error) {
	return grant{key: g.key, exp: time.Now().Add(ttl)}, nil
}
