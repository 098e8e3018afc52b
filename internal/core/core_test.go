package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/leverege/lock/lockerr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRetryMore(t *testing.T) {
	for _, tc := range []struct {
		count    int
		attempts int // how many attempts the schedule allows; -1: unbounded
	}{
		{0, 1}, {1, 2}, {10, 11}, {-1, -1}, {-5, -1},
	} {
		r := Retry{Count: tc.count}
		n := 1
		for r.More(n) && n < 1000 {
			n++
		}
		if tc.attempts < 0 {
			assert.Equal(t, 1000, n, "Count %d retries forever", tc.count)
		} else {
			assert.Equal(t, tc.attempts, n, "Count %d: attempts", tc.count)
		}
	}
}

func TestRetryWait(t *testing.T) {
	// rnd returns a fixed point of [0, n): the wait is Delay-Jitter at 0,
	// Delay at the middle, Delay+Jitter at n-1, and never negative.
	at := func(frac float64) func(int64) int64 {
		return func(n int64) int64 { return int64(frac * float64(n-1)) }
	}
	for _, tc := range []struct {
		r    Retry
		frac float64
		want time.Duration
	}{
		{Retry{Delay: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}, 0, 100 * time.Millisecond},
		{Retry{Delay: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}, 0.5, 200 * time.Millisecond},
		{Retry{Delay: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}, 1, 300 * time.Millisecond},
		{Retry{Delay: 10 * time.Millisecond, Jitter: 100 * time.Millisecond}, 0, 0},
		{Retry{Delay: 10 * time.Millisecond}, 0.7, 10 * time.Millisecond},
		{Retry{}, 0.3, 0},
	} {
		got := tc.r.Wait(at(tc.frac))
		assert.Equal(t, tc.want, got, "%+v at %v", tc.r, tc.frac)
	}
}

// TestRunSchedule drives Tries with a fake attempt and checks how many
// attempts it makes and what the error says.
func TestRunSchedule(t *testing.T) {
	taken := []*lockerr.NodeError{{Node: 0, Addr: "a", Err: lockerr.ErrTaken}}
	fail := func(calls *int) func(context.Context) attempt[int] {
		return func(context.Context) attempt[int] { *calls++; return attempt[int]{Nodes: taken} }
	}
	t.Run("exhausted", func(t *testing.T) {
		calls := 0
		_, err := run(t.Context(), nil, Retry{Count: 3}, "k", fail(&calls), nil, nil)
		assert.Equal(t, 4, calls)
		var e *lockerr.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 4, e.Attempts)
		assert.Nil(t, e.Cause)
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired)
		assert.ErrorIs(t, err, lockerr.ErrTaken)
	})
	t.Run("succeeds late", func(t *testing.T) {
		calls := 0
		got, err := run(t.Context(), nil, Retry{Count: 5}, "k", func(context.Context) attempt[int] {
			calls++
			return attempt[int]{OK: calls == 3, Lock: calls}
		}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, 3, got)
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := 0
		_, err := run(ctx, nil, Retry{Count: -1}, "k", fail(&calls), nil, nil)
		assert.Zero(t, calls, "a cancelled caller must not acquire")
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		calls := 0
		_, err := run(ctx, nil, Retry{Count: -1, Delay: time.Hour}, "k", fail(&calls), nil, nil)
		assert.Equal(t, 1, calls)
		var e *lockerr.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 1, e.Attempts)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, lockerr.ErrTaken, "the last attempt's detail is kept")
	})
	t.Run("why", func(t *testing.T) {
		_, err := run(t.Context(), nil, Retry{Count: 1}, "k", func(context.Context) attempt[int] {
			return attempt[int]{Why: lockerr.ErrNoValidity}
		}, nil, nil)
		assert.ErrorIs(t, err, lockerr.ErrNoValidity)
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired)
	})
	t.Run("destroyed", func(t *testing.T) {
		stop := make(chan struct{})
		close(stop)
		_, err := run(t.Context(), stop, Retry{}, "k", fail(new(int)), nil, nil)
		assert.ErrorIs(t, err, lockerr.ErrDestroyed)
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired)
		assert.NotErrorIs(t, err, context.Canceled)
	})
	t.Run("destroyed while waiting", func(t *testing.T) {
		stop := make(chan struct{})
		time.AfterFunc(20*time.Millisecond, func() { close(stop) })
		var calls int
		_, err := run(t.Context(), stop, Retry{Count: -1, Delay: time.Hour}, "k", fail(&calls), nil, nil)
		assert.ErrorIs(t, err, lockerr.ErrDestroyed)
		assert.Equal(t, 1, calls)
	})
}

func TestCheckTTL(t *testing.T) {
	assert.NoError(t, CheckTTL(3*time.Millisecond, 2*time.Millisecond))
	for _, ttl := range []time.Duration{-1, 0, 2 * time.Millisecond} {
		err := CheckTTL(ttl, 2*time.Millisecond)
		assert.ErrorIs(t, err, lockerr.ErrInvalidArgument, "ttl %v", ttl)
	}
	assert.ErrorIs(t, CheckKey(""), lockerr.ErrInvalidArgument)
	assert.Equal(t, "k", Namespaced("", "k"))
	assert.Equal(t, "a:k", Namespaced("a", "k"))
}

func TestInFlight(t *testing.T) {
	var l InFlight
	require.NoError(t, l.Enter())
	destroyed := make(chan bool)
	go func() { destroyed <- l.Close() }()
	select {
	case <-l.Closing():
	case <-time.After(5 * time.Second):
		t.Fatal("Destroy did not interrupt the call")
	}
	select {
	case <-destroyed:
		t.Fatal("Destroy returned while a call was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	l.Exit()
	assert.True(t, <-destroyed)
	assert.False(t, l.Close(), "second Close")
	assert.ErrorIs(t, l.Enter(), lockerr.ErrDestroyed)
}

func TestCtxErr(t *testing.T) {
	assert.NoError(t, CtxErr(t.Context()))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.Equal(t, context.Canceled, CtxErr(ctx))

	shutdown := errors.New("shutting down")
	ctx, cancelCause := context.WithCancelCause(t.Context())
	cancelCause(shutdown)
	err := CtxErr(ctx)
	assert.ErrorIs(t, err, context.Canceled, "ctx.Err() must match")
	assert.ErrorIs(t, err, shutdown, "the caller's cause must match")
	assert.Equal(t, "shutting down: context canceled", err.Error())

	ctx, cancel = context.WithTimeoutCause(t.Context(), time.Nanosecond, shutdown)
	defer cancel()
	<-ctx.Done()
	err = CtxErr(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, shutdown)
}

// TestRunUndoesOnDestroy: an attempt that wins while Destroy is starting
// must be undone, since it could never be unlocked.
func TestRunUndoesOnDestroy(t *testing.T) {
	stop := make(chan struct{})
	var undone []int
	_, err := run(t.Context(), stop, Retry{}, "k", func(context.Context) attempt[int] {
		close(stop) // Destroy starts while the attempt is in flight
		return attempt[int]{OK: true, Lock: 7}
	}, func(l int) { undone = append(undone, l) }, nil)
	assert.Equal(t, []int{7}, undone)
	assert.ErrorIs(t, err, lockerr.ErrDestroyed)
	assert.ErrorIs(t, err, lockerr.ErrNotAcquired)

	// A caller's own cancellation after a won attempt keeps the lock: the
	// caller can still unlock it.
	ctx, cancelPlain := context.WithCancel(t.Context())
	got, err := run(ctx, nil, Retry{}, "k", func(context.Context) attempt[int] {
		cancelPlain()
		return attempt[int]{OK: true, Lock: 8}
	}, func(int) { t.Error("undo called for a plain cancellation") }, nil)
	require.NoError(t, err)
	assert.Equal(t, 8, got)
}

func TestRetryWaitNeverOverflows(t *testing.T) {
	huge := Retry{Delay: time.Duration(1<<63 - 1), Jitter: time.Duration(1<<63 - 1)}
	for _, frac := range []float64{0, 0.5, 1} {
		d := huge.Wait(func(n int64) int64 { return int64(frac * float64(n-1)) })
		assert.GreaterOrEqual(t, d, time.Duration(0), "at %v", frac)
	}
	assert.NotPanics(t, func() { huge.Wait(rand.Int64N) })
}

func TestCheckTTLUnits(t *testing.T) {
	for _, ttl := range []time.Duration{time.Nanosecond, 999 * time.Microsecond} {
		err := CheckTTL(ttl, 0)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "ttl %v", ttl)
		assert.Contains(t, err.Error(), "at least 1ms")
	}
	assert.NoError(t, CheckTTL(time.Millisecond, 0))
	// 2.9ms is 2ms once truncated: no window over a 2ms drift.
	assert.ErrorIs(t, CheckTTL(2900*time.Microsecond, 2*time.Millisecond), lockerr.ErrInvalidArgument)
}
