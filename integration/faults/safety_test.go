package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/internal/safety"
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
				Addrs: addrs(ms), Keys: 3, Clients: 8, PerClient: soak(150),
				TTL: 2 * time.Second, Hold: 0, RetryDelay: 2 * time.Millisecond,
				NodeTimeout: 250 * time.Millisecond, CounterDir: t.TempDir(),
				Holder: "main", Deadline: 3 * time.Minute,
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
			violations := safety.Check(res.Windows)
			assert.Empty(t, violations, "overlapping windows")
			got := counters(t, spec.CounterDir)
			assert.Equal(t, res.Acquired, got, "lost updates: counters differ from acquisitions")
			left := leftKeys(t, spec.Addrs)
			assert.Empty(t, left, "keys left on the masters")
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
		variant core.Variant
		setup   func(t *testing.T, spec *loadSpec)
	}{
		{
			// Three clients can each win a different single master.
			name: "quorum N/2", variant: core.Variant{HalfQuorum: true},
			setup: func(t *testing.T, spec *loadSpec) { spec.Hold = 5 * time.Millisecond },
		},
		{
			// A holder that overran its ttl deletes the next owner's key.
			name: "plain DEL", variant: core.Variant{PlainDel: true},
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

// TestCheckerCatchesLateValidity: clients whose replies come back 150 ms
// late (a proxy delays them) race clients with direct links. Measuring the
// validity from after the replies hands the slow clients locks whose keys
// have already expired (overlaps); the real algorithm refuses them.
func TestCheckerCatchesLateValidity(t *testing.T) {
	for _, broken := range []bool{true, false} {
		ms := masters(t, 3)
		proxies := cluster.Proxies(t)[:3]
		for _, p := range proxies[1:] {
			require.NoError(t, p.Latency(150*time.Millisecond))
		}
		// One fast client, holding briefly and retrying every ~30ms, leaves
		// the key free for the slow clients most of the time and takes it
		// soon after their keys expire.
		fast := loadSpec{
			Addrs: addrs(ms), Keys: 1, Clients: 1, PerClient: 40,
			TTL: 100 * time.Millisecond, Hold: 20 * time.Millisecond, RetryDelay: 30 * time.Millisecond,
			NodeTimeout: 500 * time.Millisecond, CounterDir: t.TempDir(), Holder: "fast", Deadline: time.Minute,
		}
		slow := fast
		slow.Addrs = []string{ms[0].Addr(), proxies[1].Addr(), proxies[2].Addr()}
		slow.Holder, slow.Tries, slow.Clients, slow.PerClient, slow.Hold = "slow", 1, 3, 30, 80*time.Millisecond
		if broken {
			slow.Variant = core.Variant{LateStart: true}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		done := make(chan loadResult)
		go func() { done <- runLoad(ctx, slow) }()
		res := runLoad(ctx, fast)
		res = merge(res, <-done)
		cancel()
		for _, p := range proxies {
			require.NoError(t, p.Heal())
		}
		require.Empty(t, res.Errors)
		violations := safety.Check(res.Windows)
		report(t, "broken=%v acquisitions=%d slow-refused=%d violations=%d", broken, total(res.Acquired), len(res.Refused), len(violations))
		if broken {
			assert.NotEmpty(t, violations, "the checker missed validity measured after the replies")
		} else {
			assert.Empty(t, violations, "the real algorithm overlapped: %v", violations)
			late := 0
			for _, r := range res.Refused {
				if strings.Contains(r, "validity window closed") {
					late++
				}
			}
			assert.Positive(t, late, "no slow client ever won a quorum too late: the scenario tested nothing")
		}
	}
}
