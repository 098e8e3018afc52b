package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/redlock"
)

// demoted is scenario 16's cluster after a failover in which the endpoint
// still leads to the old master A, restarted and made a replica of the
// promoted A' (REPLICAOF), as a DNS name cached by clients does for a
// while. Client 1 locked k (which A' had when A died, so the demoted A
// has it again) and l (which A' missed, so A has it no more).
type demoted struct {
	*replicated
	opts     []redlock.Option
	c1       *redlock.Client
	seen1    *answers
	lkK, lkL *redlock.Lock
}

const demotedTTL = 3 * time.Second // within the restart delay

func startDemoted(t *testing.T, delay time.Duration) *demoted {
	t.Helper()
	d := &demoted{replicated: startReplicated(t), seen1: &answers{}}
	if delay > 0 {
		d.opts = append(d.opts, redlock.WithRestartDelay(delay))
		d.settle(t, delay)
	}
	d.c1 = newClient(t, d.addrs(), append(d.opts, redlock.WithRetryCount(0), redlock.WithObserver(d.seen1))...)
	var err error
	d.lkK, err = d.c1.Lock(t.Context(), "k", demotedTTL)
	require.NoError(t, err)
	require.NoError(t, d.a2.WaitReplicaSynced(t.Context()))
	cutReplica(t, d.a, d.a2)
	d.lkL, err = d.c1.Lock(t.Context(), "l", demotedTTL)
	require.NoError(t, err)

	failover(t, nil, d.a, d.a2) // the endpoint is not moved
	// Clients that follow the new address lock through A' (which writes
	// its marker under its new replication ID, with the protection on).
	other := newClient(t, []string{d.a2.Addr(), d.b.Addr(), d.c.Addr()}, append(d.opts, redlock.WithRetryCount(0))...)
	_, _ = other.Lock(t.Context(), "m", time.Second)
	// The old master comes back and is made a replica of the new one.
	require.NoError(t, d.a.Start(t.Context()))
	require.NoError(t, d.a.ReplicaOf(t.Context(), d.a2))
	require.NoError(t, d.a.WaitReplicaSynced(t.Context()))
	require.Equal(t, d.lkK.Value(), get(t, d.a, "k"), "the demoted master lacks k")
	require.Empty(t, get(t, d.a, "l"), "the demoted master has l")
	// Client 1's connection through the endpoint died with A: it fails
	// once (the stale connection of docs/safety.md), then is dialed again.
	if lk, err := d.c1.Lock(t.Context(), "warm", time.Second); err == nil {
		require.NoError(t, lk.Unlock(t.Context()))
	}
	return d
}

// readOnly asserts that err, the endpoint's answer, names a read-only
// replica, and not a key held elsewhere, nor one not held there, nor an
// unreachable master, nor one rejoining.
func readOnly(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, "%s: the demoted master behind the endpoint said yes", what)
	assert.ErrorIs(t, err, lock.ErrReadOnly, "%s: the demoted master behind the endpoint answered %q", what, err)
	for _, not := range []error{lock.ErrTaken, lock.ErrNotHeldHere, lock.ErrUnreachable, lock.ErrRejoining} {
		assert.NotErrorIs(t, err, not, "%s", what)
	}
}

// lockVia locks key with a new client, and returns the endpoint's
// answer. The Lock must fail, so that its error names every master's
// answer: a free key is first given to another owner on B (k is client
// 1's on B and C).
func (d *demoted) lockVia(t *testing.T, key string) error {
	t.Helper()
	if get(t, d.b, key) == "" {
		plant(t, d.b, key, time.Minute)
	}
	c := newClient(t, d.addrs(), append(d.opts, redlock.WithRetryCount(0))...)
	_, err := c.Lock(t.Context(), key, time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired)
	return nodeErr(err, 0)
}

// onlyVia removes key from C, so that an Extend or Unlock of it depends
// on the endpoint's answer and its error names that answer.
func (d *demoted) onlyVia(t *testing.T, key string) {
	t.Helper()
	_, err := d.c.Do(t.Context(), "DEL", key)
	require.NoError(t, err)
}

// TestDemotedMasterReadOnly: after a failover the endpoint leads, for a
// while, to the old master, now a replica of the new one. Its answer is
// ErrReadOnly, named as such: to a Lock of a free key or of a held one
// (restartDelay off: a plain SET), and to an Extend and an Unlock of a key
// it has (the scripts write).
func TestDemotedMasterReadOnly(t *testing.T) {
	t.Parallel()
	d := startDemoted(t, 0)
	readOnly(t, d.lockVia(t, "free"), "Lock of a free key")
	readOnly(t, d.lockVia(t, "k"), "Lock of a held key")

	d.onlyVia(t, "k")
	_, err := d.lkK.Extend(t.Context(), demotedTTL)
	require.ErrorIs(t, err, lock.ErrNoQuorum)
	readOnly(t, nodeErr(err, 0), "Extend of a key it has")
	extend := nodeErr(err, 0)
	err = d.lkK.Unlock(t.Context())
	require.ErrorIs(t, err, lock.ErrNoQuorum)
	readOnly(t, nodeErr(err, 0), "Unlock of a key it has")
	report(t, "demoted master behind the endpoint, restartDelay off: Lock: %q; Extend: %q; Unlock: %q",
		d.lockVia(t, "free2"), extend, nodeErr(err, 0))
}

// TestDemotedMasterReadOnlyWhenScriptsDoNotWrite: a demoted master answers
// a script that writes nothing as a master would: an Extend or an Unlock
// of a key it lacks got "not held here" (which counted towards the lock
// being lost); with the restart protection, a Lock got "rejoining" while
// the marker it replicated from the new master was younger than the delay,
// and "taken" afterwards when the new master held the key. acquire.lua,
// extend.lua and release.lua meet READONLY only when they write. The
// Client learns the role from the INFO every connection opens with, and
// names every answer of a replica ErrReadOnly.
func TestDemotedMasterReadOnlyWhenScriptsDoNotWrite(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, restartDelay} {
		t.Run(fmt.Sprintf("restartDelay=%v", delay), func(t *testing.T) {
			d := startDemoted(t, delay)
			demotedAt := time.Now()
			d.onlyVia(t, "l")
			_, err := d.lkL.Extend(t.Context(), demotedTTL)
			require.Error(t, err)
			t.Logf("Extend of a key the demoted master lacks: %v", err)
			readOnly(t, nodeErr(err, 0), "Extend of a key it lacks")
			err = d.lkL.Unlock(t.Context())
			require.Error(t, err)
			t.Logf("Unlock of a key the demoted master lacks: %v", err)
			readOnly(t, nodeErr(err, 0), "Unlock of a key it lacks")
			if delay == 0 {
				return
			}
			readOnly(t, d.lockVia(t, "free"), "Lock of a free key, the marker younger than the delay")
			readOnly(t, d.lockVia(t, "k"), "Lock of a held key, the marker younger than the delay")
			// Once the marker A' wrote (replicated to the demoted A) is
			// older than the delay, and A has been up that long:
			time.Sleep(delay + time.Second - time.Since(demotedAt))
			readOnly(t, d.lockVia(t, "free3"), "Lock of a free key, past the delay")
			plant(t, d.a2, "k3", time.Minute)
			require.NoError(t, d.a.WaitReplicaSynced(t.Context()))
			readOnly(t, d.lockVia(t, "k3"), "Lock of a key held on the new master, past the delay")
		})
	}
}

// TestReplicaPromotedAgainCounts: a master taken for a replica (it
// answered READONLY, or its connection's INFO said role:slave) is asked
// again on a new connection, so that once it is a master again (here
// REPLICAOF NO ONE; an endpoint that follows a failover does the same)
// its votes count again, rather than being named ErrReadOnly for as long
// as the old connection lives.
func TestReplicaPromotedAgainCounts(t *testing.T) {
	t.Parallel()
	a, b := redistest.StartServer(t), redistest.StartServer(t)
	c := newClient(t, []string{a.Addr()}, redlock.WithRetryCount(0))
	lk, err := c.Lock(t.Context(), "before", time.Second)
	require.NoError(t, err, "Lock through a master")
	require.NoError(t, lk.Unlock(t.Context()))

	require.NoError(t, a.ReplicaOf(t.Context(), b))
	require.NoError(t, a.WaitReplicaSynced(t.Context()))
	_, err = c.Lock(t.Context(), "while-replica", time.Second)
	require.Error(t, err, "Lock through a replica")
	readOnly(t, nodeErr(err, 0), "a demoted master (the connection of before)")

	require.NoError(t, a.Promote(t.Context()))
	began := time.Now()
	require.Eventually(t, func() bool {
		lk, err := c.Lock(t.Context(), "after", time.Second)
		if err != nil {
			return false
		}
		return lk.Unlock(t.Context()) == nil
	}, 5*time.Second, 50*time.Millisecond, "the master promoted again still refused")
	report(t, "a master demoted, then promoted again: its votes count again %v after the promotion", time.Since(began).Round(time.Millisecond))
}
