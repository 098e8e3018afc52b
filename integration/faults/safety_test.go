package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/redlock"
)

// soak scales a scenario up when LOCK_SOAK is set (see docs/safety.md).
func soak(n int) int {
	if testing.Short() {
		return max(n/4, 1)
	}
	if soaking {
		return n * 10
	}
	return n
}

// report logs a scenario's figures in one greppable line, for docs/safety.md.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// TestHealthyContention (scenario 1): N = 3 and 5 healthy masters, clients
// in this process and in a second process contending for three keys. No
// windows overlap, no update is lost, no key is left.
func TestHealthyContention(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			ms := masters(t, n)
			spec := loadSpec{
				Addrs: addrs(ms), Keys: 3, Clients: 8, PerClient: soak(175),
				TTL: 2 * time.Second, Hold: 0, RetryDelay: 2 * time.Millisecond,
				NodeTimeout: 250 * time.Millisecond, CounterDir: t.TempDir(),
				Holder: "main", Deadline: time.Duration(soak(3)) * time.Minute,
			}
			other := spec
			other.Clients, other.Holder = 4, "worker"
			_, wait := startWorker(t, other)
			ctx, cancel := context.WithTimeout(t.Context(), spec.Deadline)
			defer cancel()
			start := time.Now()
			res := runLoad(ctx, spec)
			res = merge(res, wait())
			elapsed := time.Since(start)

			want := (spec.Clients + other.Clients) * spec.PerClient
			require.Empty(t, res.Errors)
			assert.Equal(t, want, total(res.Acquired), "acquisitions")
			assert.Zero(t, res.Lost, "Unlocks that found their lock gone")
			violations := safety.Check(res.Windows)
			assert.Empty(t, violations, "overlapping windows")
			got := counters(t, spec.CounterDir)
			assert.Equal(t, res.Acquired, got, "lost updates: counters differ from acquisitions")
			// Unlock returns at a quorum; a delete still on its way (or one
			// that ran out its node timeout, leaving its key to expire) lands
			// shortly after.
			var left []string
			assert.Eventually(t, func() bool { left = leftKeys(t, spec.Addrs); return len(left) == 0 },
				3*time.Second, 10*time.Millisecond, "keys left on the masters: %v", left)
			report(t, "N=%d clients=%d+%d(process) acquisitions=%d in %v violations=%d lost-updates=%d leaked-keys=%d p50=%v p99=%v",
				n, spec.Clients, other.Clients, total(res.Acquired), elapsed.Round(time.Millisecond), len(violations),
				total(res.Acquired)-total(got), len(left), percentile(res.Latency, 0.5), percentile(res.Latency, 0.99))
		})
	}
}

// TestCheckerCatchesBrokenVariants proves that the checker can fail: each
// deliberately broken variant of the algorithm, in the conditions that
// expose it, produces overlapping windows, while the real algorithm in the
// same conditions produces none.
func TestCheckerCatchesBrokenVariants(t *testing.T) {
	for _, tc := range []struct {
		name    string
		variant variant
		setup   func(t *testing.T, spec *loadSpec)
	}{
		{
			// Three clients can each win a different single master.
			name: "quorum N/2", variant: variant{HalfQuorum: true},
			setup: func(t *testing.T, spec *loadSpec) { spec.Hold = 5 * time.Millisecond },
		},
		{
			// A holder that overran its ttl deletes the next owner's key.
			name: "plain DEL", variant: variant{PlainDel: true},
			setup: func(t *testing.T, spec *loadSpec) {
				spec.TTL, spec.Hold, spec.Overrun = 100*time.Millisecond, 10*time.Millisecond, 3
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, broken := range []bool{true, false} {
				ms := masters(t, 3)
				spec := loadSpec{
					Addrs: addrs(ms), Keys: 1, Clients: 6, PerClient: 20,
					TTL: 2 * time.Second, RetryDelay: time.Millisecond,
					NodeTimeout: 250 * time.Millisecond, CounterDir: t.TempDir(),
					Holder: "c", Deadline: 2 * time.Minute,
				}
				tc.setup(t, &spec)
				if broken {
					spec.Variant = tc.variant
				}
				ctx, cancel := context.WithTimeout(t.Context(), spec.Deadline)
				res := runLoad(ctx, spec)
				cancel()
				require.Empty(t, res.Errors)
				violations := safety.Check(res.Windows)
				report(t, "broken=%v acquisitions=%d violations=%d", broken, total(res.Acquired), len(violations))
				if broken {
					assert.NotEmpty(t, violations, "the checker missed the broken variant")
				} else {
					assert.Empty(t, violations, "the real algorithm overlapped: %v", violations)
				}
			}
		})
	}
}

// TestCheckerCatchesLateValidity: a slow client, whose replies from two of
// three masters come back 150 ms late (the proxy delays them; its SETs land
// at once), locks with a 100 ms ttl while a fast client with direct links
// keeps retrying. The keys expire at 100 ms and the fast client takes them;
// both then hold until their Expiration. Measuring the validity from after
// the replies hands the slow client a lock whose keys have already expired,
// and the checker sees the two windows overlap; the real algorithm refuses
// the slow client (ErrNoValidity) and nothing overlaps.
func TestCheckerCatchesLateValidity(t *testing.T) {
	for _, broken := range []bool{true, false} {
		ms := masters(t, 3)
		proxies := shared.Cluster(t).Proxies(t)[:3]
		for _, p := range proxies[1:] {
			require.NoError(t, p.Latency(150*time.Millisecond))
		}
		var opts []redlock.Option
		if broken {
			opts = append(opts, variant{LateStart: true}.option())
		}
		slow := newClient(t, []string{ms[0].Addr(), proxies[1].Addr(), proxies[2].Addr()},
			append(opts, redlock.WithRetryCount(0), redlock.WithNodeTimeout(time.Second))...)
		fast := newClient(t, addrs(ms), redlock.WithRetryCount(-1), redlock.WithRetryDelay(5*time.Millisecond), redlock.WithRetryJitter(0))
		var rec safety.Recorder
		holdUntilExpired := func(key, holder string, lk *redlock.Lock) {
			start := safety.Mono()
			time.Sleep(time.Until(lk.Expiration()))
			rec.Held(key, holder, start, safety.Mono(), lk.Expiration())
		}
		const rounds = 5
		slowWon, refusedLate := 0, 0
		for r := range rounds {
			key := fmt.Sprint("late", r)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(5 * time.Millisecond) // let the slow client's SETs land first
				lk, err := fast.Lock(t.Context(), key, 100*time.Millisecond)
				if assert.NoError(t, err, "the fast client") {
					holdUntilExpired(key, "fast", lk)
				}
			}()
			lk, err := slow.Lock(t.Context(), key, 100*time.Millisecond)
			if err == nil {
				slowWon++
				holdUntilExpired(key, "slow", lk)
			} else if errors.Is(err, lock.ErrNoValidity) {
				refusedLate++
			}
			wg.Wait()
		}
		for _, p := range proxies {
			require.NoError(t, p.Heal())
		}
		violations := safety.Check(rec.Windows())
		report(t, "broken=%v rounds=%d slow-won=%d slow-refused-late=%d violations=%d", broken, rounds, slowWon, refusedLate, len(violations))
		if broken {
			assert.NotEmpty(t, violations, "the checker missed validity measured after the replies")
		} else {
			assert.Empty(t, violations, "the real algorithm overlapped: %v", violations)
			assert.Zero(t, slowWon, "the real algorithm granted a late quorum")
			// A round can also be refused as "taken", when the fast client's
			// SET beats the slow one's to a master; most are refused late.
			assert.Positive(t, refusedLate, "no late quorum was refused: the scenario tested nothing")
		}
	}
}

// TestCheckerCatchesNoDrift: masters whose clocks run 0.8% fast expire a
// 2 s key about 16 ms early by the client's clock. Without the drift term a
// holder that works to its Expiration overlaps the next owner, who takes
// the key as soon as it expires; the real allowance (round(0.01 × 2000) +
// 2 = 22 ms) ends the first window before that.
func TestCheckerCatchesNoDrift(t *testing.T) {
	fastClocks := integration.StartT(t, 3, integration.WithClockRate(1.008))
	ttl := 2 * time.Second
	for _, broken := range []bool{true, false} {
		require.NoError(t, fastClocks.FlushAll(t.Context()))
		var opts []redlock.Option
		if broken {
			opts = append(opts, variant{NoDrift: true}.option())
		}
		first := newClient(t, fastClocks.Addrs(), append(opts, redlock.WithRetryCount(0))...)
		next := newClient(t, fastClocks.Addrs(), append(opts, redlock.WithRetryCount(-1), redlock.WithRetryDelay(time.Millisecond), redlock.WithRetryJitter(0))...)
		var rec safety.Recorder
		const rounds = 4
		for r := range rounds {
			key := fmt.Sprint("drift", r)
			lk, err := first.Lock(t.Context(), key, ttl)
			require.NoError(t, err)
			start := safety.Mono()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Start retrying shortly before the key can expire.
				time.Sleep(time.Until(lk.Expiration()) - 100*time.Millisecond)
				lk2, err := next.Lock(t.Context(), key, ttl)
				if assert.NoError(t, err) {
					start2 := safety.Mono()
					time.Sleep(50 * time.Millisecond)
					rec.Held(key, "next", start2, safety.Mono(), lk2.Expiration())
				}
			}()
			time.Sleep(time.Until(lk.Expiration())) // works to the last moment
			rec.Held(key, "first", start, safety.Mono(), lk.Expiration())
			wg.Wait()
		}
		violations := safety.Check(rec.Windows())
		report(t, "broken=%v clock-rate=1.008 ttl=%v rounds=%d violations=%d", broken, ttl, rounds, len(violations))
		if broken {
			assert.NotEmpty(t, violations, "the checker missed validity without the drift term")
		} else {
			assert.Empty(t, violations, "the real algorithm overlapped: %v", violations)
		}
	}
}
