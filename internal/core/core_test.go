package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leverege/lock/internal/leakcheck"
	"github.com/leverege/lock/lockerr"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }

// wantErrIs reports, as a failure of t that lets the test go on, an err
// from what that does not match target.
func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s err = %v, want it to match %q", what, err, target)
	}
}

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
			if n != 1000 {
				t.Errorf("Retry{Count: %d}.More allowed %d attempts, want it to retry forever (up to the test's 1000)", tc.count, n)
			}
		} else if n != tc.attempts {
			t.Errorf("Retry{Count: %d}.More allowed %d attempts, want %d", tc.count, n, tc.attempts)
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
		if got := tc.r.Wait(at(tc.frac)); got != tc.want {
			t.Errorf("%+v.Wait(rnd at %v) = %v, want %v", tc.r, tc.frac, got, tc.want)
		}
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
		if calls != 4 {
			t.Errorf("run(Retry{Count: 3}, always taken) made %d attempts, want 4", calls)
		}
		var e *lockerr.Error
		if !errors.As(err, &e) {
			t.Fatalf("run(Retry{Count: 3}, always taken) err = %v, want a *lockerr.Error", err)
		}
		if e.Attempts != 4 {
			t.Errorf("run(Retry{Count: 3}, always taken) err.Attempts = %d, want 4", e.Attempts)
		}
		if e.Cause != nil {
			t.Errorf("run(Retry{Count: 3}, always taken) err.Cause = %v, want nil", e.Cause)
		}
		wantErrIs(t, "run(Retry{Count: 3}, always taken)", err, lockerr.ErrNotAcquired)
		wantErrIs(t, "run(Retry{Count: 3}, always taken)", err, lockerr.ErrTaken)
	})
	t.Run("succeeds late", func(t *testing.T) {
		calls := 0
		got, err := run(t.Context(), nil, Retry{Count: 5}, "k", func(context.Context) attempt[int] {
			calls++
			return attempt[int]{OK: calls == 3, Lock: calls}
		}, nil, nil)
		if err != nil {
			t.Fatalf("run(Retry{Count: 5}, won at the 3rd attempt) err = %v, want nil", err)
		}
		if got != 3 {
			t.Errorf("run(Retry{Count: 5}, won at the 3rd attempt) = %d, want 3 (the lock of the 3rd attempt)", got)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := 0
		_, err := run(ctx, nil, Retry{Count: -1}, "k", fail(&calls), nil, nil)
		if calls != 0 {
			t.Errorf("run(cancelled ctx) made %d attempts, want 0: a cancelled caller must not acquire", calls)
		}
		wantErrIs(t, "run(cancelled ctx)", err, lockerr.ErrNotAcquired)
		wantErrIs(t, "run(cancelled ctx)", err, context.Canceled)
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		calls := 0
		_, err := run(ctx, nil, Retry{Count: -1, Delay: time.Hour}, "k", fail(&calls), nil, nil)
		if calls != 1 {
			t.Errorf("run(30ms ctx, Delay 1h) made %d attempts, want 1", calls)
		}
		var e *lockerr.Error
		if !errors.As(err, &e) {
			t.Fatalf("run(30ms ctx, Delay 1h) err = %v, want a *lockerr.Error", err)
		}
		if e.Attempts != 1 {
			t.Errorf("run(30ms ctx, Delay 1h) err.Attempts = %d, want 1", e.Attempts)
		}
		wantErrIs(t, "run(30ms ctx, Delay 1h)", err, context.DeadlineExceeded)
		if !errors.Is(err, lockerr.ErrTaken) {
			t.Errorf("run(30ms ctx, Delay 1h) err = %v, want ErrTaken: the last attempt's detail is kept", err)
		}
	})
	t.Run("why", func(t *testing.T) {
		_, err := run(t.Context(), nil, Retry{Count: 1}, "k", func(context.Context) attempt[int] {
			return attempt[int]{Why: lockerr.ErrNoValidity}
		}, nil, nil)
		wantErrIs(t, "run(attempts failing with Why ErrNoValidity)", err, lockerr.ErrNoValidity)
		wantErrIs(t, "run(attempts failing with Why ErrNoValidity)", err, lockerr.ErrNotAcquired)
	})
	t.Run("destroyed", func(t *testing.T) {
		stop := make(chan struct{})
		close(stop)
		_, err := run(t.Context(), stop, Retry{}, "k", fail(new(int)), nil, nil)
		wantErrIs(t, "run(stop closed)", err, lockerr.ErrDestroyed)
		wantErrIs(t, "run(stop closed)", err, lockerr.ErrNotAcquired)
		if errors.Is(err, context.Canceled) {
			t.Errorf("run(stop closed) err = %v, want it not to match context.Canceled", err)
		}
	})
	t.Run("destroyed while waiting", func(t *testing.T) {
		stop := make(chan struct{})
		time.AfterFunc(20*time.Millisecond, func() { close(stop) })
		var calls int
		_, err := run(t.Context(), stop, Retry{Count: -1, Delay: time.Hour}, "k", fail(&calls), nil, nil)
		wantErrIs(t, "run(stop closed after 20ms, Delay 1h)", err, lockerr.ErrDestroyed)
		if calls != 1 {
			t.Errorf("run(stop closed after 20ms, Delay 1h) made %d attempts, want 1", calls)
		}
	})
}

func TestCheckTTL(t *testing.T) {
	if err := CheckTTL(3*time.Millisecond, 2*time.Millisecond); err != nil {
		t.Errorf("CheckTTL(3ms, drift 2ms) = %v, want nil", err)
	}
	for _, ttl := range []time.Duration{-1, 0, 2 * time.Millisecond} {
		err := CheckTTL(ttl, 2*time.Millisecond)
		if !errors.Is(err, lockerr.ErrInvalidArgument) {
			t.Errorf("CheckTTL(%v, drift 2ms) = %v, want ErrInvalidArgument", ttl, err)
		}
	}
	if err := CheckKey(""); !errors.Is(err, lockerr.ErrInvalidArgument) {
		t.Errorf(`CheckKey("") = %v, want ErrInvalidArgument`, err)
	}
	if got := Namespaced("", "k"); got != "k" {
		t.Errorf(`Namespaced("", "k") = %q, want "k"`, got)
	}
	if got := Namespaced("a", "k"); got != "a:k" {
		t.Errorf(`Namespaced("a", "k") = %q, want "a:k"`, got)
	}
}

func TestInFlight(t *testing.T) {
	var l InFlight
	if err := l.Enter(); err != nil {
		t.Fatalf("Enter() = %v, want nil", err)
	}
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
	if first := <-destroyed; !first {
		t.Errorf("first Close() = false, want true")
	}
	if l.Close() {
		t.Errorf("second Close() = true, want false")
	}
	if err := l.Enter(); !errors.Is(err, lockerr.ErrDestroyed) {
		t.Errorf("Enter() after Close = %v, want ErrDestroyed", err)
	}
}

func TestCtxErr(t *testing.T) {
	if err := CtxErr(t.Context()); err != nil {
		t.Errorf("CtxErr(live ctx) = %v, want nil", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := CtxErr(ctx); !reflect.DeepEqual(err, context.Canceled) {
		t.Errorf("CtxErr(cancelled ctx) = %#v, want context.Canceled itself", err)
	}

	shutdown := errors.New("shutting down")
	ctx, cancelCause := context.WithCancelCause(t.Context())
	cancelCause(shutdown)
	err := CtxErr(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CtxErr(ctx cancelled with a cause) = %v, want context.Canceled: ctx.Err() must match", err)
	}
	if !errors.Is(err, shutdown) {
		t.Errorf("CtxErr(ctx cancelled with a cause) = %v, want it to match the cause %q: the caller's cause must match", err, shutdown)
	}
	if got, want := err.Error(), "shutting down: context canceled"; got != want {
		t.Errorf("CtxErr(ctx cancelled with a cause).Error() = %q, want %q", got, want)
	}

	ctx, cancel = context.WithTimeoutCause(t.Context(), time.Nanosecond, shutdown)
	defer cancel()
	<-ctx.Done()
	err = CtxErr(ctx)
	wantErrIs(t, "CtxErr(ctx timed out with a cause)", err, context.DeadlineExceeded)
	wantErrIs(t, "CtxErr(ctx timed out with a cause)", err, shutdown)
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
	if want := []int{7}; !slices.Equal(undone, want) {
		t.Errorf("run(won while Destroy starts) undid %v, want %v", undone, want)
	}
	wantErrIs(t, "run(won while Destroy starts)", err, lockerr.ErrDestroyed)
	wantErrIs(t, "run(won while Destroy starts)", err, lockerr.ErrNotAcquired)

	// A caller's own cancellation after a won attempt keeps the lock: the
	// caller can still unlock it.
	ctx, cancelPlain := context.WithCancel(t.Context())
	got, err := run(ctx, nil, Retry{}, "k", func(context.Context) attempt[int] {
		cancelPlain()
		return attempt[int]{OK: true, Lock: 8}
	}, func(int) { t.Error("undo called for a plain cancellation") }, nil)
	if err != nil {
		t.Fatalf("run(won, then cancelled by the caller) err = %v, want nil", err)
	}
	if got != 8 {
		t.Errorf("run(won, then cancelled by the caller) = %d, want 8 (the lock won)", got)
	}
}

func TestRetryWaitNeverOverflows(t *testing.T) {
	huge := Retry{Delay: time.Duration(1<<63 - 1), Jitter: time.Duration(1<<63 - 1)}
	for _, frac := range []float64{0, 0.5, 1} {
		if d := huge.Wait(func(n int64) int64 { return int64(frac * float64(n-1)) }); d < 0 {
			t.Errorf("%+v.Wait(rnd at %v) = %v, want it not negative", huge, frac, d)
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%+v.Wait(rand.Int64N) panicked: %v", huge, r)
			}
		}()
		huge.Wait(rand.Int64N)
	}()
}

func TestCheckTTLUnits(t *testing.T) {
	for _, ttl := range []time.Duration{time.Nanosecond, 999 * time.Microsecond} {
		err := CheckTTL(ttl, 0)
		if !errors.Is(err, lockerr.ErrInvalidArgument) {
			t.Fatalf("CheckTTL(%v, 0) = %v, want ErrInvalidArgument", ttl, err)
		}
		if !strings.Contains(err.Error(), "at least 1ms") {
			t.Errorf("CheckTTL(%v, 0) = %v, want it to say \"at least 1ms\"", ttl, err)
		}
	}
	if err := CheckTTL(time.Millisecond, 0); err != nil {
		t.Errorf("CheckTTL(1ms, 0) = %v, want nil", err)
	}
	// 2.9ms is 2ms once truncated: no window over a 2ms drift.
	if err := CheckTTL(2900*time.Microsecond, 2*time.Millisecond); !errors.Is(err, lockerr.ErrInvalidArgument) {
		t.Errorf("CheckTTL(2.9ms, drift 2ms) = %v, want ErrInvalidArgument", err)
	}
}
