package benchmarks

// The cases, each for N = 1, 3 and 5 masters and every implementation
// (impl=ours|redsync|floor, and impl=mem under N=1 only, as it has one
// master whatever N says):
//
//   - Sequential: Lock and Unlock a fresh key, one goroutine; ns/op and the
//     cycle's latency percentiles (p50-ns, p99-ns).
//   - Parallel: the same cycle from 64 goroutines (b.SetParallelism);
//     ns/op and cycles/s; failed counts cycles that returned an error.
//   - Contended: one key, 16 contenders here and 4 in a worker process (the
//     test binary re-executed), each looping Lock, hold 1 ms, Unlock, pause
//     2 ms; see benchContended. No floor (it does not retry); mem runs its
//     20 contenders here, as it cannot share a lock with another process.
//   - Extend: lock once, then b.N Extends in a row.
//
// Every case uses a 10 s ttl and each library's default node timeout. The
// names are benchstat's key=value form, so that
//
//	go tool benchstat -col /impl out/bench.txt
//
// puts the implementations side by side.

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const ttl = 10 * time.Second

var masterCounts = []int{1, 3, 5}

// everyImpl is every implementation that a case over n masters compares.
func everyImpl(n int) []string {
	if n == 1 {
		return []string{implOurs, implRedsync, implFloor, implMem}
	}
	return []string{implOurs, implRedsync, implFloor}
}

// retryingImpls are those that can wait for a taken key (all but floor).
func retryingImpls(n int) []string {
	if n == 1 {
		return []string{implOurs, implRedsync, implMem}
	}
	return []string{implOurs, implRedsync}
}

// forEach runs fn as N=<n>/impl=<impl> for every master count and every
// implementation that impls gives for it.
func forEach(b *testing.B, impls func(n int) []string, fn func(b *testing.B, impl string, addrs []string)) {
	all := servers(b)
	for _, n := range masterCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for _, impl := range impls(n) {
				b.Run("impl="+impl, func(b *testing.B) { fn(b, impl, all[:n]) })
			}
		})
	}
}

// mustLocker builds impl for this benchmark run and releases it when the run
// ends.
func mustLocker(b *testing.B, impl string, addrs []string, r retry) locker {
	b.Helper()
	l, closeL, err := newLocker(impl, addrs, r)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := closeL(); err != nil {
			b.Error(err)
		}
	})
	return l
}

// loopCtx is the context of a benchmark's calls: it bounds the whole run
// in time (each call is bounded further by node and I/O timeouts), and it
// has no per-call cost.
func loopCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkSequential(b *testing.B) {
	forEach(b, everyImpl, func(b *testing.B, impl string, addrs []string) {
		sequential(b, mustLocker(b, impl, addrs, retry{}))
	})
}

// sequential runs b.N cycles of Lock and Unlock of a fresh key, one at a
// time, and reports the cycle's latency percentiles.
func sequential(b *testing.B, l locker) {
	if err := warm(l, 1, ttl); err != nil {
		b.Fatal(err)
	}
	// The keys are made before the clock starts.
	prefix := uniqueKey("seq") + ":"
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	lat := make([]int64, b.N)
	ctx := loopCtx(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i, key := range keys {
		start := time.Now()
		h, err := l.Lock(ctx, key, ttl)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
		lat[i] = int64(time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 50)), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 99)), "p99-ns")
}

// parallelGoroutines is how many goroutines BenchmarkParallel runs (at
// least; RunParallel starts a multiple of GOMAXPROCS).
const parallelGoroutines = 64

func BenchmarkParallel(b *testing.B) {
	forEach(b, everyImpl, func(b *testing.B, impl string, addrs []string) {
		parallel(b, mustLocker(b, impl, addrs, retry{}))
	})
}

// parallel runs b.N cycles of Lock and Unlock of fresh keys from
// parallelGoroutines goroutines, and reports cycles/s and failed cycles.
func parallel(b *testing.B, l locker) {
	procs := runtime.GOMAXPROCS(0)
	perProc := (parallelGoroutines + procs - 1) / procs
	if err := warm(l, perProc*procs, ttl); err != nil {
		b.Fatal(err)
	}
	prefix := uniqueKey("par")
	var (
		ids      atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Pointer[error]
	)
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	ctx := loopCtx(b)
	b.SetParallelism(perProc)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine has keys of its own; building one costs one
		// small allocation, counted in every implementation's allocs/op.
		buf := fmt.Appendf(nil, "%s:%d:", prefix, ids.Add(1))
		n := len(buf)
		for i := 0; pb.Next(); i++ {
			buf = strconv.AppendInt(buf[:n], int64(i), 10)
			h, err := l.Lock(ctx, string(buf), ttl)
			if err != nil {
				fail(err)
				continue
			}
			if err := h.Unlock(ctx); err != nil {
				fail(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
	b.ReportMetric(float64(failed.Load()), "failed")
	if p := firstErr.Load(); p != nil {
		b.Logf("%d failed cycles; the first: %v", failed.Load(), *p)
	}
}

// The two retry schedules of BenchmarkContended.
var contendedDelays = []struct {
	name  string
	delay time.Duration // 0: each library's default
}{
	// A fixed 10 ms, the same for all: ours WithRetryDelay(10ms) and
	// WithRetryJitter(0), redsync WithRetryDelay(10ms) (which has no
	// jitter), mem WithDelay(10ms).
	{"10ms", 10 * time.Millisecond},
	// Each library's own: ours 200 ms ± 100 ms (uniform), redsync uniform
	// in [50 ms, 250 ms), mem a fixed 100 ms.
	{"default", 0},
}

func BenchmarkContended(b *testing.B) {
	all := servers(b)
	for _, n := range masterCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for _, d := range contendedDelays {
				b.Run("delay="+d.name, func(b *testing.B) {
					for _, impl := range retryingImpls(n) {
						b.Run("impl="+impl, func(b *testing.B) {
							benchContended(b, impl, all[:n], retry{forever: true, delay: d.delay})
						})
					}
				})
			}
		})
	}
}

// The contenders of BenchmarkContended: here and in the worker process.
const (
	localContenders  = 16
	remoteContenders = 4
)

// benchContended runs one window of contention on one key: this process's
// contenders until they have made b.N acquisitions or contendCap has
// passed, whichever comes first, and the worker's for as long (it is told
// to stop at the same moment). Every Lock retries until it succeeds or its
// lockTimeout ends (a failure). It reports, over both processes:
//
//   - acq/s: acquisitions per second of the window (ns/op is set to its
//     inverse, the window per acquisition, rather than the run time per b.N);
//   - mean-wait-ms, p50-wait-ms, p99-wait-ms: the time from calling Lock to
//     its success;
//   - cmds/acq: the commands the masters processed during the window,
//     Lua's redis.call included (a release script counts as 3: EVAL, GET,
//     DEL), per acquisition; not for mem;
//   - failed: Lock calls that returned an error.
//
// allocs/op and B/op are this process's, per b.N, failed attempts included.
func benchContended(b *testing.B, impl string, addrs []string, r retry) {
	l := mustLocker(b, impl, addrs, r)
	local, remote := localContenders, remoteContenders
	if impl == implMem {
		local, remote = localContenders+remoteContenders, 0
	}
	if err := warm(l, local, ttl); err != nil {
		b.Fatal(err)
	}
	key := uniqueKey("contended")

	var w *worker
	if remote > 0 {
		var err error
		w, err = startWorker(workerConfig{Impl: impl, Addrs: addrs, Key: key, TTL: ttl,
			Forever: r.forever, Delay: r.delay, Goroutines: remote})
		if err != nil {
			b.Fatal(err)
		}
		defer w.kill()
	}
	var before int64
	if impl != implMem {
		var err error
		if before, err = commandsProcessed(addrs); err != nil {
			b.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), contendCap)
	defer cancel()
	stopped := make(chan time.Time, 1)
	context.AfterFunc(ctx, func() {
		stopped <- time.Now()
		if w != nil {
			w.stop()
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	if w != nil {
		if err := w.start(); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	t := contend(ctx, l, key, ttl, local, int64(b.N), cancel)
	b.StopTimer()
	window := (<-stopped).Sub(start)
	if w != nil {
		wt, err := w.result()
		if err != nil {
			b.Fatal(err)
		}
		t.add(wt)
	}

	if t.Acquired == 0 {
		b.Fatalf("no acquisition in %v (%d failed: %s)", window, t.Failed, t.FirstErr)
	}
	acq := float64(t.Acquired)
	b.ReportMetric(acq/window.Seconds(), "acq/s")
	b.ReportMetric(float64(window.Nanoseconds())/acq, "ns/op")
	// The waits are bimodal (at once, or after at least one retry delay),
	// so p50 can flip between the modes from run to run; the mean does not.
	var sum int64
	for _, w := range t.Waits {
		sum += w
	}
	b.ReportMetric(float64(sum)/acq/1e6, "mean-wait-ms")
	b.ReportMetric(float64(percentile(t.Waits, 50))/1e6, "p50-wait-ms")
	b.ReportMetric(float64(percentile(t.Waits, 99))/1e6, "p99-wait-ms")
	b.ReportMetric(float64(t.Failed), "failed")
	if impl != implMem {
		after, err := commandsProcessed(addrs)
		if err != nil {
			b.Fatal(err)
		}
		// Less the first reading's INFO, which the second counts.
		cmds := after - before - int64(len(addrs))
		b.ReportMetric(float64(cmds)/acq, "cmds/acq")
	}
	if t.Failed > 0 {
		b.Logf("%d Lock calls failed; one: %s", t.Failed, t.FirstErr)
	}
	if t.Overlaps > 0 {
		b.Errorf("%d acquisitions while another contender of the same process held the key", t.Overlaps)
	}
	if t.UnlockFailed > 0 {
		b.Errorf("%d Unlock calls failed; one: %s", t.UnlockFailed, t.FirstErr)
	}
}

func BenchmarkExtend(b *testing.B) {
	forEach(b, everyImpl, func(b *testing.B, impl string, addrs []string) {
		l := mustLocker(b, impl, addrs, retry{})
		if err := warm(l, 1, ttl); err != nil {
			b.Fatal(err)
		}
		ctx := loopCtx(b)
		h, err := l.Lock(ctx, uniqueKey("extend"), ttl)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if h, err = h.Extend(ctx, ttl); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := h.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
	})
}
