package faults

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/redlock"
)

// replicated is scenario 16's cluster: master A with its replica A', both
// reached through one endpoint (leading to A until a failover), and two
// masters B and C without replicas.
type replicated struct {
	a, a2, b, c *redistest.Server
	ep          *endpoint
}

func startReplicated(t *testing.T, aOpts ...redistest.ServerOption) *replicated {
	t.Helper()
	r := &replicated{a: redistest.StartServer(t, aOpts...)}
	r.a2 = redistest.StartServer(t, redistest.WithReplicaOf(r.a))
	r.b, r.c = redistest.StartServer(t), redistest.StartServer(t)
	r.ep = newEndpoint(t, r.a.Addr())
	return r
}

// addrs are the three masters as clients know them: the endpoint, B, C.
func (r *replicated) addrs() []string { return []string{r.ep.Addr(), r.b.Addr(), r.c.Addr()} }

// settle, with the restart protection on, waits until A, B and C vote, and
// until A' has A's marker.
func (r *replicated) settle(t *testing.T, d time.Duration) {
	t.Helper()
	settle(t, d, r.a, r.b, r.c)
	require.NoError(t, r.a2.WaitReplicaSynced(t.Context()))
}

// TestFailoverDoubleGrant (scenario 16): a replica promoted in a failover
// lacks the lock key its master granted just before dying. A' stops
// consuming replication; client 1 locks k on A and B (C refuses: another
// owner's short key); A dies, A' is promoted and the endpoint leads to it;
// C's key expires; client 2 locks k, and A' (no key) and C say yes.
//
// Without the restart protection (the control) client 2 gets the lock
// while client 1's is valid. With it, A' answers "rejoining" (its
// replication ID is not the one its marker, copied from A, records), so
// client 2 is refused until client 1's keys have expired; A' votes again
// one restart delay after its first refusal.
func TestFailoverDoubleGrant(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, restartDelay} {
		t.Run(fmt.Sprintf("restartDelay=%v", delay), func(t *testing.T) {
			t.Parallel()
			const ttl1 = 2500 * time.Millisecond // within the restart delay
			const blocker = time.Second          // C's other owner
			r := startReplicated(t)
			var opts []redlock.Option
			if delay > 0 {
				opts = append(opts, redlock.WithRestartDelay(delay))
				r.settle(t, delay)
			}

			// 1. A' stops consuming replication.
			cutReplica(t, r.a, r.a2)
			// 2. Client 1 locks k on A and B; C refuses.
			plant(t, r.c, "k", blocker)
			c1 := newClient(t, r.addrs(), append(opts, redlock.WithRetryCount(0))...)
			lk1, err := c1.Lock(t.Context(), "k", ttl1)
			require.NoError(t, err)
			held1 := safety.Mono()
			require.Equal(t, lk1.Value(), get(t, r.a, "k"), "client 1's key on A")
			require.Equal(t, lk1.Value(), get(t, r.b, "k"), "client 1's key on B")
			require.Equal(t, "another-owner", get(t, r.c, "k"))
			// 3. A dies; A' is promoted; the endpoint leads to it.
			failover(t, r.ep, r.a, r.a2)
			require.Empty(t, get(t, r.a2, "k"), "the promoted replica has client 1's key: the hazard did not happen")
			// 4. C's short key expires.
			waitGone(t, r.c, "k")
			// 5. Client 2 locks k, retrying.
			var seen answers
			c2 := newClient(t, r.addrs(), append(opts, redlock.WithRetryCount(-1), redlock.WithRetryDelay(50*time.Millisecond),
				redlock.WithRetryJitter(0), redlock.WithObserver(&seen))...)
			ctx, cancel := context.WithTimeout(t.Context(), ttl1+5*time.Second)
			defer cancel()
			asked := time.Now()
			lk2, err := c2.Lock(ctx, "k", ttl1)
			require.NoError(t, err)
			held2 := safety.Mono()
			granted := time.Now()
			waited := granted.Sub(asked)
			after1 := granted.Sub(lk1.Expiration()) // negative: granted while client 1's lock was valid

			var rec safety.Recorder
			rec.Held("k", "client 1", held1, safety.MonoAt(lk1.Expiration()), lk1.Expiration())
			rec.Held("k", "client 2", held2, safety.MonoAt(lk2.Expiration()), lk2.Expiration())
			violations := safety.Check(rec.Windows())
			ep := seen.of(0, "acquire")
			require.NotEmpty(t, ep)

			if delay == 0 {
				require.Len(t, violations, 1, "the control: client 2 should have been granted k while client 1 held it")
				assert.Negative(t, after1, "client 2 was granted k after client 1's validity")
				report(t, "scenario 16 control: restartDelay off: client 2 granted k %v after asking, %v before client 1's validity ended (%v); A' answered %v",
					waited.Round(time.Millisecond), (-after1).Round(time.Millisecond), violations[0], ep[len(ep)-1].Err)
				return
			}

			assert.Empty(t, violations, "double grant with the restart protection on")
			var rejoining int
			for _, a := range ep {
				if a.Err != nil {
					require.ErrorIs(t, a.Err, lock.ErrRejoining, "A' (promoted) answered")
					rejoining++
				}
			}
			require.NotZero(t, rejoining, "A' never answered rejoining")
			firstRefusal := ep[0].at
			require.NoError(t, lk2.Unlock(t.Context()))

			// A' votes again one restart delay after it first refused: a
			// client of the endpoint alone retries until it gets a lock.
			probe := newClient(t, []string{r.ep.Addr()}, redlock.WithRestartDelay(delay), redlock.WithRetryCount(-1),
				redlock.WithRetryDelay(20*time.Millisecond), redlock.WithRetryJitter(0))
			plk, err := probe.Lock(ctx, "probe", 100*time.Millisecond)
			require.NoError(t, err)
			votedAgain := time.Since(firstRefusal)
			require.NoError(t, plk.Unlock(t.Context()))
			assert.GreaterOrEqual(t, votedAgain, delay-50*time.Millisecond, "A' voted again before the restart delay")
			assert.LessOrEqual(t, votedAgain, delay+500*time.Millisecond, "A' refused for longer than the restart delay")
			report(t, "scenario 16: restartDelay %v, ttl %v: client 2 refused for %v (%d answers of A', %d rejoining: %q), granted %v after client 1's validity ended (0 violations); A' voted again %v after its first refusal",
				delay, ttl1, waited.Round(time.Millisecond), len(ep), rejoining, ep[0].Err,
				after1.Round(time.Millisecond), votedAgain.Round(time.Millisecond))
		})
	}
}

// TestPromotedReplicaWhileIdle: a failover while no lock is held costs no
// more than one restart delay of that master's vote. A' is promoted in
// sync with A; B holds k for another owner throughout, so a Lock of k
// needs the endpoint's vote. The first Lock after the failover waits for
// A' to rejoin, at most one restart delay; then locks go through at once.
func TestPromotedReplicaWhileIdle(t *testing.T) {
	t.Parallel()
	r := startReplicated(t)
	r.settle(t, restartDelay)
	var seen answers
	c := newClient(t, r.addrs(), redlock.WithRestartDelay(restartDelay), redlock.WithRetryCount(-1),
		redlock.WithRetryDelay(50*time.Millisecond), redlock.WithRetryJitter(0), redlock.WithObserver(&seen))
	lk, err := c.Lock(t.Context(), "before", time.Second) // the client's connections are in use before the failover
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(t.Context()))
	require.NoError(t, r.a2.WaitReplicaSynced(t.Context()))
	plant(t, r.b, "k", 30*time.Second)

	failover(t, r.ep, r.a, r.a2)
	asked := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), restartDelay+3*time.Second)
	defer cancel()
	lk, err = c.Lock(ctx, "k", time.Second)
	require.NoError(t, err)
	refused := time.Since(asked)
	require.NoError(t, lk.Unlock(t.Context()))
	assert.LessOrEqual(t, refused, restartDelay+500*time.Millisecond, "the promoted replica refused for longer than one restart delay")
	assert.GreaterOrEqual(t, refused, restartDelay-100*time.Millisecond, "the promoted replica voted at once")

	// Then every lock goes through at its first attempt, the endpoint's
	// vote included.
	const after = 5
	for i := range after {
		lk, err := c.Lock(t.Context(), "k", time.Second)
		require.NoError(t, err, "lock %d after the promoted replica rejoined", i)
		require.NoError(t, lk.Unlock(t.Context()))
	}

	var stale, rejoining, yes int
	for _, a := range seen.of(0, "acquire") {
		if !a.at.After(asked) {
			continue
		}
		switch {
		case a.Err == nil:
			yes++
		case errors.Is(a.Err, lock.ErrRejoining):
			assert.Zero(t, yes, "A' answered rejoining after it had voted again: %v", a.Err)
			rejoining++
		case errors.Is(a.Err, lock.ErrUnreachable):
			stale++ // the connection the switch closed, used once
		default:
			t.Errorf("A' answered %v", a.Err)
		}
	}
	assert.NotZero(t, rejoining)
	assert.LessOrEqual(t, stale, 1, "more than one answer from a stale connection")
	assert.Equal(t, 1+after, yes)
	report(t, "promoted replica, no lock held: restartDelay %v: the first Lock after the failover waited %v for A' (%d stale-connection answer, %d rejoining), then %d Locks went through at their first attempt",
		restartDelay, refused.Round(time.Millisecond), stale, rejoining, after)
}

// TestRestartWithPersistence: a master restarted with its data keeps its
// keys, and with them client 1's lock, but it cannot tell that from a
// snapshot older than its locks: the restart protection refuses its vote
// for one restart delay either way (its uptime, and its replication ID,
// which every restart of redis-server 7 renews while the marker it loaded
// keeps the old one). The control: a snapshot older than client 1's lock,
// with the protection off, grants k a second time.
func TestRestartWithPersistence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opt     redistest.ServerOption
		restart func(t *testing.T, s *redistest.Server)
	}{
		{"AOF appendfsync always, killed", redistest.WithAOF(), func(t *testing.T, s *redistest.Server) {
			require.NoError(t, s.Kill(t.Context()))
			require.NoError(t, s.Start(t.Context()))
		}},
		{"RDB written at a clean stop", redistest.WithRDB(), func(t *testing.T, s *redistest.Server) {
			require.NoError(t, s.Restart(t.Context()))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b, c := redistest.StartServer(t, tc.opt), redistest.StartServer(t), redistest.StartServer(t)
			settle(t, restartDelay, a, b, c)
			addrs := []string{a.Addr(), b.Addr(), c.Addr()}
			c1 := newClient(t, addrs, redlock.WithRestartDelay(restartDelay), redlock.WithRetryCount(0))
			lk1, err := c1.Lock(t.Context(), "k", 2500*time.Millisecond)
			require.NoError(t, err)
			before, _ := replID(t, a)

			tc.restart(t, a)
			restarted := time.Now()
			require.Equal(t, lk1.Value(), get(t, a, "k"), "the restarted master lost client 1's key")
			after, _ := replID(t, a)
			require.NotEqual(t, before, after, "the restart kept the replication ID")
			marker := get(t, a, redlock.MarkerKey)
			require.Contains(t, marker, ":"+before, "the marker the restarted master loaded")
			info, err := a.Info(t.Context(), "server")
			require.NoError(t, err)

			var seen answers
			probe := newClient(t, []string{a.Addr()}, redlock.WithRestartDelay(restartDelay), redlock.WithRetryCount(-1),
				redlock.WithRetryDelay(20*time.Millisecond), redlock.WithRetryJitter(0), redlock.WithObserver(&seen))
			ctx, cancel := context.WithTimeout(t.Context(), restartDelay+3*time.Second)
			defer cancel()
			plk, err := probe.Lock(ctx, "probe", 100*time.Millisecond)
			require.NoError(t, err)
			refused := time.Since(restarted)
			require.NoError(t, plk.Unlock(t.Context()))
			got := seen.of(0, "acquire")
			require.Greater(t, len(got), 1, "the restarted master voted at once")
			for _, a := range got[:len(got)-1] {
				require.ErrorIs(t, a.Err, lock.ErrRejoining)
			}
			assert.GreaterOrEqual(t, refused, restartDelay-100*time.Millisecond)
			assert.LessOrEqual(t, refused, restartDelay+time.Second)
			report(t, "restart with %s, keys kept (client 1's key intact): replid %s… -> %s…, uptime %ss, marker loaded %q: refused its vote for %v after the restart (%d answers, first %q)",
				tc.name, before[:8], after[:8], info["uptime_in_seconds"], marker, refused.Round(time.Millisecond), len(got)-1, got[0].Err)
		})
	}
}

// TestRestartFromOlderSnapshot: a master killed and restarted from an RDB
// snapshot taken before client 1 locked has lost client 1's key, as a
// replica promoted in scenario 16 did. The control, without the restart
// protection: client 2 is granted k while client 1 holds it. With it: the
// restarted master answers "rejoining", and client 2 waits for client 1's
// keys to expire.
func TestRestartFromOlderSnapshot(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, restartDelay} {
		t.Run(fmt.Sprintf("restartDelay=%v", delay), func(t *testing.T) {
			t.Parallel()
			const ttl1 = 2500 * time.Millisecond
			a, b, c := redistest.StartServer(t, redistest.WithRDB()), redistest.StartServer(t), redistest.StartServer(t)
			addrs := []string{a.Addr(), b.Addr(), c.Addr()}
			var opts []redlock.Option
			if delay > 0 {
				opts = append(opts, redlock.WithRestartDelay(delay))
				settle(t, delay, a, b, c)
			}
			_, err := a.Do(t.Context(), "SAVE")
			require.NoError(t, err)
			plant(t, c, "k", time.Second)
			c1 := newClient(t, addrs, append(opts, redlock.WithRetryCount(0))...)
			lk1, err := c1.Lock(t.Context(), "k", ttl1)
			require.NoError(t, err)
			held1 := safety.Mono()

			require.NoError(t, a.Kill(t.Context()))
			require.NoError(t, a.Start(t.Context()))
			require.Empty(t, get(t, a, "k"), "the snapshot had client 1's key")
			waitGone(t, c, "k")

			var seen answers
			c2 := newClient(t, addrs, append(opts, redlock.WithRetryCount(-1), redlock.WithRetryDelay(50*time.Millisecond),
				redlock.WithRetryJitter(0), redlock.WithObserver(&seen))...)
			ctx, cancel := context.WithTimeout(t.Context(), ttl1+5*time.Second)
			defer cancel()
			asked := time.Now()
			lk2, err := c2.Lock(ctx, "k", ttl1)
			require.NoError(t, err)
			held2, granted := safety.Mono(), time.Now()
			after1 := granted.Sub(lk1.Expiration())
			var rec safety.Recorder
			rec.Held("k", "client 1", held1, safety.MonoAt(lk1.Expiration()), lk1.Expiration())
			rec.Held("k", "client 2", held2, safety.MonoAt(lk2.Expiration()), lk2.Expiration())
			violations := safety.Check(rec.Windows())
			first := seen.of(0, "acquire")[0].Err
			if delay == 0 {
				require.Len(t, violations, 1, "the control: client 2 should have been granted k while client 1 held it")
				report(t, "restart from an older RDB snapshot, restartDelay off: client 2 granted k %v before client 1's validity ended (%v)",
					(-after1).Round(time.Millisecond), violations[0])
				return
			}
			assert.Empty(t, violations)
			require.ErrorIs(t, first, lock.ErrRejoining)
			report(t, "restart from an older RDB snapshot, restartDelay %v: client 2 refused for %v (restarted master: %q), granted %v after client 1's validity ended (0 violations)",
				delay, granted.Sub(asked).Round(time.Millisecond), first, after1.Round(time.Millisecond))
		})
	}
}
