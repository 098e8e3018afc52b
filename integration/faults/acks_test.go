package faults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/redlock"
)

// withReplicas is three masters A, B and C with replicas: A's (one or
// more) behind the endpoint, which leads to A until a failover, B' and C'.
type withReplicas struct {
	a, b, c *redistest.Server
	ar      []*redistest.Server // A's replicas
	b2, c2  *redistest.Server
	ep      *endpoint
}

func startWithReplicas(t *testing.T, aReplicas int) *withReplicas {
	t.Helper()
	k := &withReplicas{a: redistest.StartServer(t), b: redistest.StartServer(t), c: redistest.StartServer(t)}
	for range aReplicas {
		k.ar = append(k.ar, redistest.StartServer(t, redistest.WithReplicaOf(k.a)))
	}
	k.b2 = redistest.StartServer(t, redistest.WithReplicaOf(k.b))
	k.c2 = redistest.StartServer(t, redistest.WithReplicaOf(k.c))
	k.ep = newEndpoint(t, k.a.Addr())
	waitStreaming(t, k.a, aReplicas)
	waitStreaming(t, k.b, 1)
	waitStreaming(t, k.c, 1)
	return k
}

// acksNodeTimeout is the node timeout of the clients with replicaAcks.
// They send WAIT with 3/4 of it, and redis-server ends a WAIT that times
// out on its cron tick (every 100 ms at the default hz 10): WAIT 1 187
// answers after 199 to 307 ms, WAIT 1 37 after 99 ms. With 800 ms the
// answer (at most about 700 ms) comes within the node timeout.
const acksNodeTimeout = 800 * time.Millisecond

func (k *withReplicas) addrs() []string { return []string{k.ep.Addr(), k.b.Addr(), k.c.Addr()} }

func (k *withReplicas) replicas() []*redistest.Server { return append(k.ar, k.b2, k.c2) }

// TestReplicaAcks: with WithReplicaAcks(1) a master's yes counts once one
// of its replicas has the key (WAIT 1 after the SET). With every replica
// healthy, Locks succeed; a master whose replica is paused answers
// ErrNotReplicated, and its vote does not count: with one such master of
// three a Lock still succeeds on the other two, with two it fails (and
// what it set is released). The control: without the option, the votes of
// masters whose replicas never got the key count.
func TestReplicaAcks(t *testing.T) {
	t.Parallel()
	k := startWithReplicas(t, 1)
	addrs := []string{k.a.Addr(), k.b.Addr(), k.c.Addr()}
	c := newClient(t, addrs, redlock.WithReplicaAcks(1), redlock.WithNodeTimeout(acksNodeTimeout), redlock.WithRetryCount(0))
	start := time.Now()
	lk, err := c.Lock(t.Context(), "healthy", time.Second)
	require.NoError(t, err, "every replica healthy")
	healthy := time.Since(start)
	require.NoError(t, lk.Unlock(t.Context()))
	for _, r := range k.replicas() {
		require.NoError(t, r.WaitReplicaSynced(t.Context()))
		require.Empty(t, get(t, r, "healthy"))
	}

	require.NoError(t, k.ar[0].Pause(t.Context()))
	start = time.Now()
	lk, err = c.Lock(t.Context(), "one", time.Second)
	require.NoError(t, err, "A's replica paused: B and C are a quorum")
	one := time.Since(start)
	require.NoError(t, lk.Unlock(t.Context()))
	// A's answer, named: with C taken, the Lock fails and says what A said.
	// Right after the last Lock, A's connection is still held by that
	// Lock's WAIT (3/4 of the node timeout), and the next request, queued
	// behind it, may answer after the node timeout: unreachable. Either
	// way A's vote does not count.
	plant(t, k.c, "queued", time.Minute)
	_, err = c.Lock(t.Context(), "queued", time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired)
	queued := nodeErr(err, 0)
	if !errors.Is(queued, lock.ErrUnreachable) {
		require.ErrorIs(t, queued, lock.ErrNotReplicated)
	}
	time.Sleep(acksNodeTimeout) // the WAITs end
	plant(t, k.c, "named", time.Minute)
	_, err = c.Lock(t.Context(), "named", time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired)
	require.ErrorIs(t, nodeErr(err, 0), lock.ErrNotReplicated)
	aSaid := nodeErr(err, 0)

	require.NoError(t, k.b2.Pause(t.Context()))
	time.Sleep(acksNodeTimeout)
	_, err = c.Lock(t.Context(), "two", time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired, "A's and B's replicas paused")
	require.ErrorIs(t, nodeErr(err, 0), lock.ErrNotReplicated)
	require.ErrorIs(t, nodeErr(err, 1), lock.ErrNotReplicated)
	require.NoError(t, nodeErr(err, 2))
	for _, m := range []*redistest.Server{k.a, k.b, k.c} {
		require.Empty(t, get(t, m, "two"), "the failed Lock left its key on %s", m.Addr())
	}
	detail := err.Error()

	// The control: without the option the same votes count.
	plain := newClient(t, addrs, redlock.WithRetryCount(0))
	lk, err = plain.Lock(t.Context(), "control", time.Second)
	require.NoError(t, err, "the control: without replicaAcks the Lock counts A's and B's votes")
	require.NoError(t, lk.Unlock(t.Context()))
	for _, r := range []*redistest.Server{k.ar[0], k.b2} {
		require.NoError(t, r.Resume(t.Context()))
	}
	report(t, "replicaAcks 1: healthy Lock %v; A's replica paused: Lock %v, A said %q (%q when queued behind the last Lock's WAIT); A's and B's paused: %s; without the option (control) granted",
		healthy.Round(time.Millisecond), one.Round(time.Millisecond), aSaid, queued, detail)
}

// TestReplicaAcksFailover: what replicaAcks narrows in scenario 16, and
// what it does not close. Every client uses WithReplicaAcks(1).
//   - A' acknowledged client 1's key and is promoted: it has the key, and
//     client 2 is refused even with the restart protection off.
//   - A' stopped consuming before client 1 locked (scenario 16's step 1):
//     A's vote does not count, so client 1 gets no lock to lose.
//   - A has two replicas; the one that acknowledged is not the one
//     promoted (the other is re-pointed to it and resyncs, losing the key
//     too): with the restart protection off, client 2 is granted k while
//     client 1 holds it, replicaAcks notwithstanding; with it on, the
//     promoted replica answers "rejoining" and client 2 waits.
func TestReplicaAcksFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
		cut      bool // the replica to be promoted (the last) stops consuming before client 1 locks
		delay    time.Duration
	}{
		{"A' acknowledged and is promoted", 1, false, 0},
		{"A' cut off before the lock", 1, true, 0},
		{"another replica acknowledged", 2, true, 0},
		{"another replica acknowledged, restartDelay on", 2, true, restartDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const ttl1 = 2500 * time.Millisecond
			k := startWithReplicas(t, tc.replicas)
			opts := []redlock.Option{redlock.WithReplicaAcks(1), redlock.WithNodeTimeout(acksNodeTimeout)}
			if tc.delay > 0 {
				opts = append(opts, redlock.WithRestartDelay(tc.delay))
				settle(t, tc.delay, k.a, k.b, k.c)
				for _, r := range k.replicas() {
					require.NoError(t, r.WaitReplicaSynced(t.Context()))
				}
			}
			promoted, others := k.ar[len(k.ar)-1], k.ar[:len(k.ar)-1]
			if tc.cut {
				cutReplica(t, k.a, promoted) // cuts every replica's link: the others reconnect
				waitStreaming(t, k.a, len(others))
			}
			plant(t, k.c, "k", time.Second)
			c1 := newClient(t, k.addrs(), append(opts, redlock.WithRetryCount(0))...)
			lk1, err := c1.Lock(t.Context(), "k", ttl1)
			if tc.cut && len(others) == 0 {
				require.ErrorIs(t, err, lock.ErrNotAcquired, "client 1 was granted k on a master whose replica never got it")
				require.ErrorIs(t, nodeErr(err, 0), lock.ErrNotReplicated)
				report(t, "replicaAcks 1, scenario 16's A' cut off before client 1 locks: client 1 refused: %v", err)
				return
			}
			require.NoError(t, err)
			held1 := safety.Mono()
			failover(t, k.ep, k.a, promoted)
			for _, r := range others {
				require.NoError(t, r.ReplicaOf(t.Context(), promoted))
			}
			if tc.cut {
				require.Empty(t, get(t, promoted, "k"), "the promoted replica has client 1's key")
			} else {
				require.Equal(t, lk1.Value(), get(t, promoted, "k"), "the promoted replica lacks client 1's key")
			}
			waitGone(t, k.c, "k")

			var seen answers
			c2 := newClient(t, k.addrs(), append(opts, redlock.WithRetryCount(-1), redlock.WithRetryDelay(50*time.Millisecond),
				redlock.WithRetryJitter(0), redlock.WithObserver(&seen))...)
			ctx, cancel := context.WithTimeout(t.Context(), ttl1+5*time.Second)
			defer cancel()
			asked := time.Now()
			lk2, err := c2.Lock(ctx, "k", ttl1)
			require.NoError(t, err)
			held2, granted := safety.Mono(), time.Now()
			var rec safety.Recorder
			rec.Held("k", "client 1", held1, safety.MonoAt(lk1.Expiration()), lk1.Expiration())
			rec.Held("k", "client 2", held2, safety.MonoAt(lk2.Expiration()), lk2.Expiration())
			violations := safety.Check(rec.Windows())
			first := seen.of(0, "acquire")[0].Err
			after1 := granted.Sub(lk1.Expiration()).Round(time.Millisecond)
			switch {
			case !tc.cut:
				assert.Empty(t, violations)
				require.ErrorIs(t, first, lock.ErrTaken, "the promoted replica answered")
				report(t, "replicaAcks 1, restartDelay off, A' acknowledged then promoted: client 2 refused for %v (A' answered %q), granted %v after client 1's validity ended (0 violations)",
					granted.Sub(asked).Round(time.Millisecond), first, after1)
			case tc.delay == 0:
				require.Len(t, violations, 1, "the limit: client 2 should have been granted k while client 1 held it")
				report(t, "replicaAcks 1, restartDelay off, A'1 acknowledged, A'2 (cut off) promoted: client 2 granted k %v before client 1's validity ended (%v)",
					-after1, violations[0])
			default:
				assert.Empty(t, violations)
				require.ErrorIs(t, first, lock.ErrRejoining, "the promoted replica answered")
				report(t, "replicaAcks 1, restartDelay %v, A'1 acknowledged, A'2 (cut off) promoted: client 2 refused for %v (A'2 answered %q), granted %v after client 1's validity ended (0 violations)",
					tc.delay, granted.Sub(asked).Round(time.Millisecond), first, after1)
			}
		})
	}
}

// TestReplicaAcksNamedWithinNodeTimeout: a master ends a WAIT that times
// out only on its cron tick (every 100 ms at the default hz 10), so with
// the default node timeout (50 ms) a master whose replica does not
// acknowledge was never named ErrNotReplicated: the fan-out gave it up as
// unreachable first, and the connection's reader broke the connection, so
// every Lock dialed that master again. The Client now refuses replicaAcks
// with a node timeout under 200 ms, and at 200 ms the WAIT (given the
// node timeout less 150 ms) answers in time: the master is named
// ErrNotReplicated, over one connection.
func TestReplicaAcksNamedWithinNodeTimeout(t *testing.T) {
	t.Parallel()
	k := startWithReplicas(t, 1)
	require.NoError(t, k.ar[0].Pause(t.Context()))
	addrs := []string{k.a.Addr(), k.b.Addr(), k.c.Addr()}
	_, err := redlock.New(newPools(addrs), redlock.WithReplicaAcks(1), redlock.WithNodeTimeout(redlock.DefaultNodeTimeout))
	require.ErrorIs(t, err, lock.ErrInvalidArgument, "replicaAcks with the default node timeout")
	assert.ErrorContains(t, err, "node timeout")
	c := newClient(t, addrs, redlock.WithReplicaAcks(1), redlock.WithNodeTimeout(200*time.Millisecond), redlock.WithRetryCount(0))
	connections := func() int64 {
		info, err := k.a.Info(t.Context(), "stats")
		require.NoError(t, err)
		n, err := strconv.ParseInt(info["total_connections_received"], 10, 64)
		require.NoError(t, err)
		return n
	}
	before := connections()
	const locks = 5
	var lastA error
	for i := range locks {
		key := fmt.Sprint("named", i)
		plant(t, k.c, key, time.Minute) // the Lock fails and names A's answer
		_, err := c.Lock(t.Context(), key, time.Second)
		require.ErrorIs(t, err, lock.ErrNotAcquired)
		lastA = nodeErr(err, 0)
		assert.ErrorIs(t, lastA, lock.ErrNotReplicated, "Lock %d: A answered", i)
	}
	dialed := connections() - before - 1 // the harness's INFO that counts is a connection of its own
	t.Logf("%d Locks: A answered %q; the Client opened %d connections to A", locks, lastA, dialed)
	assert.LessOrEqual(t, dialed, int64(1), "connections the Client opened to A for %d Locks", locks)
}
