package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/safety"
)

const benchHead = `Usage: lock bench [flags]

A contention workload against the configured backend (the in-memory lock
when nothing is configured): --workers goroutines share one Locker and loop
over --keys keys: Lock (with the configured retries; when they run out,
again after 1ms), hold for --hold, Unlock. Under the lock each one bumps a
per-key counter by read, hold, write, so that two holders at once lose an
update, and it records its validity window (from Lock's return to the
Unlock, cut at the lock's expiration) for an overlap check. It stops after
--duration or --count acquisitions, whichever comes first.

It reports acquisitions, throughput, the Lock wait (from the first attempt
to the acquisition) at p50/p90/p99/max, the attempts that gave up, the
overlapping windows (mutual-exclusion violations) and the lost updates, and
exits 1 if there was any violation or lost update. Keys are
"lock-bench:0".."lock-bench:K-1", after the namespace if there is one.
`

const benchTail = `
Examples:
  lock bench                                   # in-memory, 5s
  lock bench --servers 127.0.0.1:6379 --workers 16 --keys 1 --duration 30s
  lock bench --json | jq .lockWaitMs
`

type benchOpts struct {
	workers  int
	keys     int
	duration time.Duration
	hold     time.Duration
	ttl      time.Duration
	count    int64
}

type percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type benchResult struct {
	Backend           string      `json:"backend"`
	Workers           int         `json:"workers"`
	Keys              int         `json:"keys"`
	HoldMs            float64     `json:"holdMs"`
	TTLMs             float64     `json:"ttlMs"`
	ElapsedMs         float64     `json:"elapsedMs"`
	Acquisitions      int64       `json:"acquisitions"`
	PerSecond         float64     `json:"perSecond"`
	LockWaitMs        percentiles `json:"lockWaitMs"`
	GaveUp            int64       `json:"gaveUp"`       // Lock calls that failed (retries ran out), tried again
	Overran           int64       `json:"overran"`      // holders past their validity: the counter was not written
	UnlockErrors      int64       `json:"unlockErrors"` // Unlock failed (not "not held")
	Violations        int         `json:"violations"`   // overlapping validity windows
	ViolationExamples []string    `json:"violationExamples,omitempty"`
	LostUpdates       int64       `json:"lostUpdates"`
	LastError         string      `json:"lastError,omitempty"` // of the attempts that gave up
	refused           bool        // the last that gave up: the masters refuse this configuration
}

// benchStats are the running figures, for the progress line.
type benchStats struct {
	acquired atomic.Int64
	gaveUp   atomic.Int64
}

func cmdBench(args []string, stdout *os.File) error {
	fset := newFlagSet("bench")
	var bf backendFlags
	bf.register(fset)
	var o benchOpts
	fset.IntVar(&o.workers, "workers", 8, "`N` goroutines contending")
	fset.IntVar(&o.keys, "keys", 4, "`K` keys they contend for")
	fset.DurationVar(&o.duration, "duration", 5*time.Second, "stop after this long")
	fset.DurationVar(&o.hold, "hold", time.Millisecond, "hold each lock this long (0: just long enough to yield)")
	fset.DurationVar(&o.ttl, "ttl", time.Second, "time to live of each lock")
	fset.Int64Var(&o.count, "count", 1_000_000, "stop after `N` acquisitions in all")
	asJSON := fset.Bool("json", false, "print the result as JSON, without a progress line")
	if err := parse(fset, args, stdout, benchHead, benchTail); err != nil {
		return err
	}
	switch {
	case fset.NArg() > 0:
		return usageErr("bench: unexpected argument %q", fset.Arg(0))
	case o.workers < 1 || o.workers > 10000:
		return usageErr("bench: --workers %d must be in [1, 10000]", o.workers)
	case o.keys < 1:
		return usageErr("bench: --keys %d must be at least 1", o.keys)
	case o.duration <= 0:
		return usageErr("bench: --duration %v must be positive", o.duration)
	case o.ttl <= 0:
		return usageErr("bench: --ttl %v must be positive", o.ttl)
	case o.hold < 0 || o.hold >= o.ttl:
		return usageErr("bench: --hold %v must be in [0, --ttl %v)", o.hold, o.ttl)
	case o.count < 1:
		return usageErr("bench: --count %d must be at least 1", o.count)
	}
	be, err := bf.load()
	if err != nil {
		return err
	}
	locker, err := be.create()
	if err != nil {
		return err
	}
	defer locker.Destroy()

	var stats benchStats
	stopProgress := func() {}
	if !*asJSON && isTerminal(stdout) {
		stopProgress = progress(stdout, &stats, o.duration)
	}
	res, err := runBench(context.Background(), locker, o, &stats)
	stopProgress()
	if err != nil {
		return err
	}
	res.Backend = be.describe()
	if *asJSON {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		printBench(stdout, res, o)
	}
	return benchVerdict(res, o)
}

// benchVerdict is the exit status of a finished run.
func benchVerdict(res benchResult, o benchOpts) error {
	switch {
	case res.Violations > 0 || res.LostUpdates > 0:
		first := ""
		if len(res.ViolationExamples) > 0 {
			first = " (first: " + res.ViolationExamples[0] + ")"
		}
		return exitErr(exitCheckFailed, "bench: mutual exclusion violated: %d overlapping windows%s, %d lost updates",
			res.Violations, first, res.LostUpdates)
	case res.Acquisitions == 0 && res.refused:
		return exitErr(exitConfig, "bench: no lock acquired in %v: the masters refuse this configuration (last: %s)",
			o.duration, strings.TrimPrefix(res.LastError, "lock: "))
	case res.Acquisitions == 0:
		if res.LastError == "" {
			return exitErr(exitUnavailable, "bench: no Lock call finished within %v (masters unreachable? try a longer --duration)", o.duration)
		}
		return exitErr(exitUnavailable, "bench: no lock acquired in %v (%d Lock calls gave up; last: %s)",
			o.duration, res.GaveUp, strings.TrimPrefix(res.LastError, "lock: "))
	}
	return nil
}

// runBench runs the workload on l and checks it.
func runBench(ctx context.Context, l lock.Locker, o benchOpts, stats *benchStats) (benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		rec      safety.Recorder                // the validity windows, on the machine-wide monotonic clock
		counters = make([]atomic.Int64, o.keys) // read and written apart: overlaps lose updates
		writes   atomic.Int64
		overran  atomic.Int64
		unlockE  atomic.Int64
		lastErr  atomic.Value // string
		refused  atomic.Bool  // the last that gave up was a refused configuration
		fatalMu  sync.Mutex
		fatal    error
		waits    = make([][]time.Duration, o.workers)
		wg       sync.WaitGroup
	)
	names := make([]string, o.keys)
	for i := range names {
		names[i] = fmt.Sprint("lock-bench:", i)
	}
	start := time.Now()
	for w := range o.workers {
		holder := fmt.Sprint("worker", w)
		wg.Go(func() {
			for i := w; ctx.Err() == nil && stats.acquired.Load() < o.count; i++ {
				k := i % o.keys
				began := time.Now()
				var lk lock.Lock
				for lk == nil {
					got, err := l.LockNs(ctx, names[k], o.ttl)
					switch {
					case err == nil:
						lk = got
					case ctx.Err() != nil:
						return
					case errors.Is(err, lock.ErrNotAcquired):
						stats.gaveUp.Add(1)
						lastErr.Store(oneLine(err.Error()))
						var le *lock.Error
						refused.Store(errors.As(err, &le) && misconfigured(le.Cause))
						select {
						case <-ctx.Done():
							return
						case <-time.After(time.Millisecond):
						}
					default:
						fatalMu.Lock()
						if fatal == nil {
							fatal = err
						}
						fatalMu.Unlock()
						cancel()
						return
					}
				}
				from := safety.Mono()
				waits[w] = append(waits[w], time.Since(began))
				stats.acquired.Add(1)
				c := counters[k].Load()
				if o.hold > 0 {
					time.Sleep(o.hold)
				} else {
					runtime.Gosched()
				}
				// A holder past its validity must not write: another may hold
				// the key by now, legitimately.
				if time.Now().Before(lk.Expiration()) {
					counters[k].Store(c + 1)
					writes.Add(1)
				} else {
					overran.Add(1)
				}
				rec.Held(lk.Key(), holder, from, safety.Mono(), lk.Expiration())
				if err := lk.Unlock(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, lock.ErrNotHeld) {
					unlockE.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if fatal != nil {
		if errors.Is(fatal, lock.ErrInvalidArgument) {
			return benchResult{}, usageErr("bench: %v", trimLock(fatal))
		}
		return benchResult{}, exitErr(exitSoftware, "bench: %v", trimLock(fatal))
	}

	all := slices.Concat(waits...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return ms(all[min(len(all)-1, int(p*float64(len(all))))])
	}
	var sum int64
	for i := range counters {
		sum += counters[i].Load()
	}
	res := benchResult{
		Workers:      o.workers,
		Keys:         o.keys,
		HoldMs:       ms(o.hold),
		TTLMs:        ms(o.ttl),
		ElapsedMs:    ms(elapsed),
		Acquisitions: int64(len(all)),
		PerSecond:    float64(len(all)) / elapsed.Seconds(),
		LockWaitMs:   percentiles{P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: pct(1)},
		GaveUp:       stats.gaveUp.Load(),
		Overran:      overran.Load(),
		UnlockErrors: unlockE.Load(),
		LostUpdates:  writes.Load() - sum,
	}
	violations := safety.Check(rec.Windows())
	res.Violations = len(violations)
	for _, v := range violations[:min(len(violations), 3)] {
		res.ViolationExamples = append(res.ViolationExamples, v.String())
	}
	if s, ok := lastErr.Load().(string); ok {
		res.LastError, res.refused = s, refused.Load()
	}
	return res, nil
}

// progress rewrites one line on the terminal four times a second until
// the returned function is called; that clears the line.
func progress(w io.Writer, stats *benchStats, total time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		width := 0
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", width))
				return
			case <-t.C:
			}
			el := time.Since(start)
			n := stats.acquired.Load()
			line := fmt.Sprintf("%5.1fs/%v  %d acquisitions  %.0f/s  %d gave up",
				el.Seconds(), total, n, float64(n)/el.Seconds(), stats.gaveUp.Load())
			fmt.Fprintf(w, "\r%-*s", width, line)
			width = max(width, len(line))
		}
	})
	return func() { close(done); wg.Wait() }
}

func printBench(w io.Writer, r benchResult, o benchOpts) {
	f := func(v float64) string {
		return (time.Duration(v * float64(time.Millisecond))).Round(time.Microsecond).String()
	}
	fmt.Fprintf(w, "backend:       %s\n", r.Backend)
	fmt.Fprintf(w, "workload:      %d workers on %d keys, holding %v, ttl %v, for %v or %d acquisitions\n",
		o.workers, o.keys, o.hold, o.ttl, o.duration, o.count)
	fmt.Fprintf(w, "acquisitions:  %d in %v (%.0f/s)\n", r.Acquisitions,
		(time.Duration(r.ElapsedMs * float64(time.Millisecond))).Round(time.Millisecond), r.PerSecond)
	fmt.Fprintf(w, "lock wait:     p50 %s  p90 %s  p99 %s  max %s\n",
		f(r.LockWaitMs.P50), f(r.LockWaitMs.P90), f(r.LockWaitMs.P99), f(r.LockWaitMs.Max))
	fmt.Fprintf(w, "gave up:       %d (Lock calls that ran out of retries, as the in-memory default's single attempt does under contention; each tried again after 1ms)\n", r.GaveUp)
	fmt.Fprintf(w, "overran:       %d (held past the validity window; counter left alone)\n", r.Overran)
	fmt.Fprintf(w, "unlock errors: %d\n", r.UnlockErrors)
	fmt.Fprintf(w, "violations:    %d (overlapping validity windows)\n", r.Violations)
	for _, v := range r.ViolationExamples {
		fmt.Fprintf(w, "               %s\n", v)
	}
	fmt.Fprintf(w, "lost updates:  %d\n", r.LostUpdates)
}
