package core

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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

// TestRunSchedule drives Run with a fake attempt and checks how many
// attempts it makes and what the error says.
func TestRunSchedule(t *testing.T) {
	taken := []*NodeError{{Node: 0, Addr: "a", Err: ErrTaken}}
	fail := func(calls *int) func(context.Context) Attempt[int] {
		return func(context.Context) Attempt[int] { *calls++; return Attempt[int]{Nodes: taken} }
	}
	t.Run("exhausted", func(t *testing.T) {
		calls := 0
		_, err := Run(t.Context(), Retry{Count: 3}, "k", fail(&calls))
		assert.Equal(t, 4, calls)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 4, e.Attempts)
		assert.Nil(t, e.Cause)
		assert.ErrorIs(t, err, ErrNotAcquired)
		assert.ErrorIs(t, err, ErrTaken)
	})
	t.Run("succeeds late", func(t *testing.T) {
		calls := 0
		got, err := Run(t.Context(), Retry{Count: 5}, "k", func(context.Context) Attempt[int] {
			calls++
			return Attempt[int]{OK: calls == 3, Lock: calls}
		})
		require.NoError(t, err)
		assert.Equal(t, 3, got)
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := 0
		_, err := Run(ctx, Retry{Count: -1}, "k", fail(&calls))
		assert.Zero(t, calls, "a cancelled caller must not acquire")
		assert.ErrorIs(t, err, ErrNotAcquired)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		calls := 0
		_, err := Run(ctx, Retry{Count: -1, Delay: time.Hour}, "k", fail(&calls))
		assert.Equal(t, 1, calls)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 1, e.Attempts)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, ErrTaken, "the last attempt's detail is kept")
	})
	t.Run("why", func(t *testing.T) {
		_, err := Run(t.Context(), Retry{Count: 1}, "k", func(context.Context) Attempt[int] {
			return Attempt[int]{Why: ErrNoValidity}
		})
		assert.ErrorIs(t, err, ErrNoValidity)
		assert.ErrorIs(t, err, ErrNotAcquired)
	})
	t.Run("cause", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(ErrDestroyed)
		_, err := Run(ctx, Retry{}, "k", fail(new(int)))
		assert.ErrorIs(t, err, ErrDestroyed)
	})
}

func TestErrorMessage(t *testing.T) {
	err := &Error{Op: "lock", Key: "app:k", Attempts: 3, Err: ErrNotAcquired, Cause: context.Canceled, Nodes: []*NodeError{
		{Node: 0, Addr: "10.0.0.1:6379", Err: ErrTaken},
		{Node: 2, Addr: "10.0.0.3:6379", Err: fmt.Errorf("%w: i/o timeout", ErrUnreachable)},
	}}
	assert.Equal(t, `lock: lock "app:k": not acquired after 3 attempts: context canceled: `+
		`node 0 (10.0.0.1:6379): held by another owner; node 2 (10.0.0.3:6379): unreachable: i/o timeout`, err.Error())
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, 0, ne.Node)
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.NotErrorIs(t, err, ErrNotHeld)

	one := &Error{Op: "unlock", Key: "k", Attempts: 1, Err: ErrNotHeld}
	assert.Equal(t, `lock: unlock "k": not held`, one.Error())
	gone := &Error{Op: "lock", Key: "k", Err: ErrDestroyed}
	assert.Equal(t, `lock: lock "k": destroyed`, gone.Error())
	assert.True(t, errors.Is(one, ErrNotHeld))
}

func TestCheckTTL(t *testing.T) {
	assert.NoError(t, CheckTTL(3*time.Millisecond, 2*time.Millisecond))
	for _, ttl := range []time.Duration{-1, 0, 2 * time.Millisecond} {
		err := CheckTTL(ttl, 2*time.Millisecond)
		assert.ErrorIs(t, err, ErrInvalidArgument, "ttl %v", ttl)
	}
	assert.ErrorIs(t, CheckKey(""), ErrInvalidArgument)
	assert.Equal(t, "k", Namespaced("", "k"))
	assert.Equal(t, "a:k", Namespaced("a", "k"))
}

func TestLife(t *testing.T) {
	var l Life
	ctx, done, err := l.Begin(t.Context())
	require.NoError(t, err)
	destroyed := make(chan bool)
	go func() { destroyed <- l.Destroy() }()
	select {
	case <-ctx.Done():
		assert.ErrorIs(t, context.Cause(ctx), ErrDestroyed)
	case <-time.After(5 * time.Second):
		t.Fatal("Destroy did not interrupt the call")
	}
	select {
	case <-destroyed:
		t.Fatal("Destroy returned while a call was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	done()
	assert.True(t, <-destroyed)
	assert.False(t, l.Destroy(), "second Destroy")
	_, _, err = l.Begin(t.Context())
	assert.ErrorIs(t, err, ErrDestroyed)
	_, err = l.Enter()
	assert.ErrorIs(t, err, ErrDestroyed)
}
