package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/memlock"
)

func TestBenchInMemory(t *testing.T) {
	r := run(t, nil, "bench", "--duration", "1s", "--json")
	if !wantExit(t, r, 0, "") {
		t.FailNow()
	}
	res := decode[benchResult](t, r.stdout)
	if !strings.Contains(res.Backend, "in-memory") {
		t.Errorf("lock bench --json: backend = %q, want it to say in-memory", res.Backend)
	}
	if res.Acquisitions <= 10 {
		t.Errorf("lock bench --duration 1s: %d acquisitions, want more than 10", res.Acquisitions)
	}
	if res.Violations != 0 {
		t.Errorf("lock bench on the in-memory lock: %d violations, want 0", res.Violations)
	}
	if res.LostUpdates != 0 {
		t.Errorf("lock bench on the in-memory lock: %d lost updates, want 0", res.LostUpdates)
	}
	if res.LockWaitMs.Max <= 0 {
		t.Errorf("lock bench: lockWaitMs.max = %v, want more than 0", res.LockWaitMs.Max)
	}
	if res.LockWaitMs.P50 > res.LockWaitMs.P99 {
		t.Errorf("lock bench: lockWaitMs.p50 = %v > p99 = %v, want p50 <= p99", res.LockWaitMs.P50, res.LockWaitMs.P99)
	}

	// The human report; the progress line is only for terminals.
	r = run(t, nil, "bench", "--duration", "300ms", "--workers", "2", "--keys", "1")
	if !wantExit(t, r, 0, "") {
		t.FailNow()
	}
	for _, want := range []string{"violations:    0", "lost updates:  0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lock %q: stdout =\n%s\nwant it to contain %q", r.args, r.stdout, want)
		}
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("lock %q: stdout = %q, want no \\r (no progress line when not on a terminal)", r.args, r.stdout)
	}

	// --count bounds it before --duration does.
	r = run(t, nil, "bench", "--duration", "1m", "--count", "50", "--json")
	if !wantExit(t, r, 0, "") {
		t.FailNow()
	}
	res = decode[benchResult](t, r.stdout)
	if res.Acquisitions < 50 || res.Acquisitions > 50+8 {
		t.Errorf("lock bench --count 50: %d acquisitions, want 50 to 58 (at most one more per worker, 8 by default)", res.Acquisitions)
	}
	if r.elapsed >= 30*time.Second {
		t.Errorf("lock bench --duration 1m --count 50 took %v, want less than 30s: --count bounds it before --duration does", r.elapsed)
	}
}

func TestBenchRedis(t *testing.T) {
	ms := masters(t)
	r := run(t, redisEnv(ms), "bench", "--duration", "1s", "--workers", "4", "--keys", "2", "--json")
	if !wantExit(t, r, 0, "") {
		t.FailNow()
	}
	res := decode[benchResult](t, r.stdout)
	if !strings.Contains(res.Backend, "redis, 3 master(s)") {
		t.Errorf(`lock bench --json on 3 masters: backend = %q, want it to contain "redis, 3 master(s)"`, res.Backend)
	}
	if res.Acquisitions <= 10 {
		t.Errorf("lock bench --duration 1s on 3 masters: %d acquisitions, want more than 10", res.Acquisitions)
	}
	if res.Violations != 0 {
		t.Errorf("lock bench on 3 masters: %d violations, want 0", res.Violations)
	}
	if res.LostUpdates != 0 {
		t.Errorf("lock bench on 3 masters: %d lost updates, want 0", res.LostUpdates)
	}
	if res.UnlockErrors != 0 {
		t.Errorf("lock bench on 3 masters: %d unlock errors, want 0", res.UnlockErrors)
	}

	// With no quorum nothing is acquired: 69.
	for _, m := range ms[:2] {
		if err := m.Pause(t.Context()); err != nil {
			t.Fatalf("pausing %s: %v", m.Addr(), err)
		}
	}
	r = run(t, redisEnv(ms), "bench", "--duration", "1s", "--workers", "2")
	oneLineError(t, r, exitUnavailable, "no Lock call finished within 1s")
}

// The checks can fail: a Locker that grants every Lock gives overlapping
// windows and lost updates, and the verdict is exit status 1.
func TestBenchCatchesBrokenLock(t *testing.T) {
	o := benchOpts{workers: 4, keys: 1, duration: 300 * time.Millisecond, hold: time.Millisecond, ttl: time.Second, count: 1000}
	res, err := runBench(context.Background(), grantAll{}, o, new(benchStats))
	if err != nil {
		t.Fatalf("runBench(a Locker that grants every Lock) err = %v, want nil", err)
	}
	if res.Acquisitions <= 0 {
		t.Errorf("runBench(a Locker that grants every Lock): %d acquisitions, want more than 0", res.Acquisitions)
	}
	if res.Violations <= 0 {
		t.Errorf("runBench(a Locker that grants every Lock): %d violations, want more than 0", res.Violations)
	}
	if len(res.ViolationExamples) == 0 {
		t.Errorf("runBench(a Locker that grants every Lock): no violation examples, want some")
	}
	if res.LostUpdates <= 0 {
		t.Errorf("runBench(a Locker that grants every Lock): %d lost updates, want more than 0", res.LostUpdates)
	}
	err = benchVerdict(res, o)
	var ex *exitError
	if !errors.As(err, &ex) {
		t.Fatalf("benchVerdict(the broken lock's result) = %v, want an *exitError", err)
	}
	if ex.code != exitCheckFailed {
		t.Errorf("benchVerdict(the broken lock's result): exit status %d, want %d (exitCheckFailed)", ex.code, exitCheckFailed)
	}
	if !strings.Contains(err.Error(), "mutual exclusion violated") {
		t.Errorf("benchVerdict(the broken lock's result) = %v, want it to say \"mutual exclusion violated\"", err)
	}

	// The same workload on a real lock passes.
	m, err := memlock.New(memlock.WithRetry(-1))
	if err != nil {
		t.Fatalf("memlock.New(WithRetry(-1)) err = %v, want nil", err)
	}
	l := lock.InMemory(m)
	defer l.Destroy()
	res, err = runBench(context.Background(), l, o, new(benchStats))
	if err != nil {
		t.Fatalf("runBench(memlock) err = %v, want nil", err)
	}
	if res.Acquisitions <= 0 {
		t.Errorf("runBench(memlock): %d acquisitions, want more than 0", res.Acquisitions)
	}
	if res.Violations != 0 {
		t.Errorf("runBench(memlock): %d violations, want 0", res.Violations)
	}
	if res.LostUpdates != 0 {
		t.Errorf("runBench(memlock): %d lost updates, want 0", res.LostUpdates)
	}
	if err := benchVerdict(res, o); err != nil {
		t.Errorf("benchVerdict(memlock's result) = %v, want nil", err)
	}
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
