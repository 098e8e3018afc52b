// Package conformance is the one behavioural suite that every backend must
// pass: memlock, and redlock over 1, 3 and 5 real masters. It speaks only
// the public contract, plus a few hooks for what only a backend can do
// (plant a foreign value on one master, list the keys left behind).
package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

// Opts are the settings a test asks of a new Locker.
type Opts struct {
	Namespace string
	Retry     int              // retries after the first attempt; negative: forever
	Delay     time.Duration    // wait between attempts (no jitter)
	Fencing   bool             // give out fencing tokens
	Observer  observe.Observer // told what the Locker does
}

// Backend describes the system under test.
type Backend struct {
	// Masters is how many masters the Locker uses (memlock: 1).
	Masters int
	// New returns a new Locker; the suite destroys it.
	New func(t *testing.T, o Opts) lock.Locker
	// Plant makes master i hold key under a value that is not l's for ttl,
	// as another owner would.
	Plant func(t *testing.T, l lock.Locker, i int, key string, ttl time.Duration)
	// Keys returns every key on every master, or nil when the backend
	// cannot tell (memlock). Keys must be able to see a leaked key.
	Keys func(t *testing.T) []string
	// Reset clears every master between tests (may be nil).
	Reset func(t *testing.T)
	// Separate: each Locker from New has keys of its own (memlock), rather
	// than being another client of the same masters.
	Separate bool
}

// Run runs the whole suite.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		f    func(*testing.T, Backend)
	}{
		{"LockUnlock", testLockUnlock},
		{"LockNs", testLockNs},
		{"UniqueValues", testUniqueValues},
		{"Extend", testExtend},
		{"ExtendRefused", testExtendRefused},
		{"Expiry", testExpiry},
		{"Retry", testRetry},
		{"RetryUntilFree", testRetryUntilFree},
		{"Cancel", testCancel},
		{"Destroy", testDestroy},
		{"BadInput", testBadInput},
		{"StaleUnlock", testStaleUnlock},
		{"Quorum", testQuorum},
		{"Contention", testContention},
		{"Do", testDo},
		{"Fencing", testFencing},
		{"LockAll", testLockAll},
		{"Observer", testObserver},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b.Reset != nil {
				b.Reset(t)
			}
			tc.f(t, b)
		})
	}
}

func newLocker(t *testing.T, b Backend, o Opts) lock.Locker {
	t.Helper()
	l := b.New(t, o)
	t.Cleanup(func() { _ = l.Destroy() })
	return l
}

// assertNoKeys fails when a master still holds a key a moment later
// (Unlock returns once a quorum has deleted; the other deletes are still on
// their way).
func assertNoKeys(t *testing.T, b Backend) {
	t.Helper()
	if b.Keys != nil {
		var left []string
		assert.Eventually(t, func() bool { left = b.Keys(t); return len(left) == 0 }, time.Second, 5*time.Millisecond,
			"keys left on the masters: %v", left)
	}
}

func testLockUnlock(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	lk, err := l.Lock(ctx, "k", time.Second)
	after := time.Now()
	require.NoError(t, err)
	assert.Equal(t, "k", lk.Key())
	assert.GreaterOrEqual(t, len(lk.Value()), 16, "value %q too short to be unique", lk.Value())
	assert.True(t, lk.Expiration().After(time.Now()), "expiration %v not in the future", lk.Expiration())
	assert.False(t, lk.Expiration().After(after.Add(time.Second)), "expiration beyond ttl")

	_, err = l.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	var le *lockerr.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 1, le.Attempts)
	assert.Equal(t, "k", le.Key)
	assert.ErrorIs(t, err, lockerr.ErrTaken)
	assert.NotErrorIs(t, err, lockerr.ErrUnreachable)
	// Lock returns once a quorum has answered; the other masters may not
	// hold the first lock yet, so at least the masters that decided it.
	assert.GreaterOrEqual(t, len(le.Nodes), b.Masters-(b.Masters/2+1)+1, "node errors")
	for _, ne := range le.Nodes {
		assert.ErrorIs(t, ne, lockerr.ErrTaken)
	}

	require.NoError(t, lk.Unlock(ctx))
	err = lk.Unlock(ctx)
	assert.ErrorIs(t, err, lockerr.ErrNotHeld, "second Unlock")
	assertNoKeys(t, b)

	lk2, err := l.Lock(ctx, "k", time.Second)
	require.NoError(t, err, "Lock after Unlock")
	assert.NotEqual(t, lk.Value(), lk2.Value())
	require.NoError(t, lk2.Unlock(ctx))
}

func testLockNs(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{Namespace: "app"})
	lk, err := l.LockNs(ctx, "k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "app:k", lk.Key())
	_, err = l.Lock(ctx, "app:k", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "Lock(app:k) while LockNs(k) holds")
	plain, err := l.Lock(ctx, "k", time.Second)
	require.NoError(t, err, "Lock(k) is another key than LockNs(k)")
	require.NoError(t, plain.Unlock(ctx))
	require.NoError(t, lk.Unlock(ctx))

	bare := newLocker(t, b, Opts{})
	lk, err = bare.LockNs(ctx, "k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "k", lk.Key(), "empty namespace keeps the key")
	require.NoError(t, lk.Unlock(ctx))
	assertNoKeys(t, b)
}

func testUniqueValues(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	seen := map[string]bool{}
	for i := range 50 {
		lk, err := l.Lock(ctx, fmt.Sprint("u", i%3), time.Second)
		require.NoError(t, err)
		assert.False(t, seen[lk.Value()], "value %q handed out twice", lk.Value())
		seen[lk.Value()] = true
		require.NoError(t, lk.Unlock(ctx))
	}
}

func testExtend(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	lk, err := l.Lock(ctx, "k", 300*time.Millisecond)
	require.NoError(t, err)
	ext, err := lk.Extend(ctx, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, lk.Key(), ext.Key())
	assert.Equal(t, lk.Value(), ext.Value())
	assert.True(t, ext.Expiration().After(lk.Expiration()), "extended expiration %v not after %v", ext.Expiration(), lk.Expiration())

	time.Sleep(time.Until(lk.Expiration()) + 100*time.Millisecond)
	_, err = l.Lock(ctx, "k", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "Lock after the old ttl but within the extension")
	// The old handle names the same acquisition: its Unlock releases it.
	require.NoError(t, lk.Unlock(ctx))
	assertNoKeys(t, b)
}

func testExtendRefused(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})

	// Released already: refused, and nothing is created.
	lk, err := l.Lock(ctx, "gone", time.Second)
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(ctx))
	_, err = lk.Extend(ctx, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	assertNoKeys(t, b)

	// The caller's context has ended: refused as undecided, lock untouched.
	lk, err = l.Lock(ctx, "cancelled", time.Second)
	require.NoError(t, err)
	cancelled, cancel := context.WithCancelCause(ctx)
	shutdown := errors.New("shutting down")
	cancel(shutdown)
	_, err = lk.Extend(cancelled, 5*time.Second)
	require.ErrorIs(t, err, lockerr.ErrNoQuorum, "Extend with an ended context")
	assert.NotErrorIs(t, err, lockerr.ErrNotHeld, "the lock is not known to be lost")
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, shutdown)
	_, err = l.Lock(ctx, "cancelled", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "the lock survives a cancelled Extend")
	require.NoError(t, lk.Unlock(ctx))

	// Past its Expiration: refused as expired, without asking the masters
	// (whose copy of the key may outlive the validity by the drift).
	lk, err = l.Lock(ctx, "exp", 150*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(time.Until(lk.Expiration()) + 10*time.Millisecond)
	_, err = lk.Extend(ctx, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	assert.ErrorIs(t, err, lockerr.ErrExpired)

	// Another owner holds it now: refused, and the owner keeps it.
	old, err := l.Lock(ctx, "taken", 150*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(time.Until(old.Expiration()) + 80*time.Millisecond)
	owner, err := lockSoon(t, l, "taken", 2*time.Second)
	require.NoError(t, err)
	_, err = old.Extend(ctx, time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotHeld)
	_, err = owner.Extend(ctx, 2*time.Second)
	require.NoError(t, err, "the owner's lock survives another's failed Extend")
	require.NoError(t, owner.Unlock(ctx))
}

// lockSoon locks key, trying again every 5 ms for up to 500 ms while it is
// taken: right after a lock's validity, its key may live on a little longer
// on a master its SET reached late (the validity is measured from before
// the SETs were sent; a new Locker dials first).
func lockSoon(t *testing.T, l lock.Locker, key string, ttl time.Duration) (lock.Lock, error) {
	t.Helper()
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		lk, err := l.Lock(t.Context(), key, ttl)
		if !errors.Is(err, lockerr.ErrNotAcquired) || time.Now().After(deadline) {
			return lk, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testExpiry(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	lk, err := l.Lock(ctx, "k", 100*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(time.Until(lk.Expiration()) + 50*time.Millisecond)
	lk2, err := lockSoon(t, l, "k", time.Second)
	require.NoError(t, err, "Lock after the holder's ttl")
	require.NoError(t, lk2.Unlock(ctx))
	assert.ErrorIs(t, lk.Unlock(ctx), lockerr.ErrNotHeld, "Unlock of the expired lock")
}

func testRetry(t *testing.T, b Backend) {
	ctx := t.Context()
	for _, retry := range []int{0, 1, 3} {
		l := newLocker(t, b, Opts{Retry: retry, Delay: 5 * time.Millisecond})
		key := fmt.Sprint("retry", retry)
		for i := range b.Masters {
			b.Plant(t, l, i, key, 5*time.Second)
		}
		_, err := l.Lock(ctx, key, time.Second)
		var le *lockerr.Error
		require.ErrorAs(t, err, &le, "retry %d", retry)
		assert.Equal(t, retry+1, le.Attempts, "retry %d: attempts", retry)
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired)
		assert.Nil(t, le.Cause, "retry %d: ran out, no cause", retry)
	}
}

func testRetryUntilFree(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{Retry: -1, Delay: 10 * time.Millisecond})
	lk, err := l.Lock(ctx, "k", 150*time.Millisecond)
	require.NoError(t, err)
	// Not unlocked: the waiter gets it once the ttl runs out.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lk2, err := l.Lock(cctx, "k", time.Second)
	require.NoError(t, err)
	assert.False(t, time.Now().Before(lk.Expiration()), "acquired before the holder's validity ended")
	require.NoError(t, lk2.Unlock(ctx))
}

func testCancel(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{Retry: -1, Delay: 10 * time.Millisecond})

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := l.Lock(cancelled, "free", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "Lock with a cancelled context")
	assert.ErrorIs(t, err, context.Canceled)
	assertNoKeys(t, b)

	lk, err := l.Lock(ctx, "k", 5*time.Second)
	require.NoError(t, err)
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = l.Lock(dctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "Lock returned long after its deadline")
	var le *lockerr.Error
	require.ErrorAs(t, err, &le)
	assert.Greater(t, le.Attempts, 1, "retried until the deadline")
	require.NoError(t, lk.Unlock(ctx))
	assertNoKeys(t, b)
}

// refusals signals each failed attempt of a Lock call.
type refusals chan struct{}

func (r refusals) Observe(e observe.Event) {
	if e.Kind == observe.KindAttempt && e.Err != nil {
		select {
		case r <- struct{}{}:
		default:
		}
	}
}

func testDestroy(t *testing.T, b Backend) {
	ctx := t.Context()
	refused := make(refusals, 1)
	l := b.New(t, Opts{Retry: -1, Delay: 10 * time.Millisecond, Observer: refused})
	lk, err := l.Lock(ctx, "k", 5*time.Second)
	require.NoError(t, err)

	// A waiter, once it has been refused (it is waiting), is interrupted by
	// Destroy.
	waited := make(chan error, 1)
	go func() {
		_, err := l.Lock(ctx, "k", time.Second)
		waited <- err
	}()
	select {
	case <-refused:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was never refused")
	}
	require.NoError(t, l.Destroy())
	select {
	case err := <-waited:
		assert.ErrorIs(t, err, lockerr.ErrDestroyed, "waiter")
		assert.ErrorIs(t, err, lockerr.ErrNotAcquired, "waiter")
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Lock was not interrupted by Destroy")
	}

	require.NoError(t, l.Destroy(), "second Destroy")
	_, err = l.Lock(ctx, "other", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrDestroyed, "Lock after Destroy")
	_, err = l.LockNs(ctx, "other", time.Second)
	assert.ErrorIs(t, err, lockerr.ErrDestroyed, "LockNs after Destroy")
	_, err = lk.Extend(ctx, time.Second)
	assert.ErrorIs(t, err, lockerr.ErrDestroyed, "Extend after Destroy")
	assert.ErrorIs(t, lk.Unlock(ctx), lockerr.ErrDestroyed, "Unlock after Destroy")
}

func testBadInput(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	for _, tc := range []struct {
		name string
		key  string
		ttl  time.Duration
		arg  string
	}{
		{"empty key", "", time.Second, "key"},
		{"zero ttl", "k", 0, "ttl"},
		{"negative ttl", "k", -time.Second, "ttl"},
		{"sub-millisecond ttl", "k", 500 * time.Microsecond, "ttl"},
	} {
		for _, lockNs := range []bool{false, true} {
			f := l.Lock
			if lockNs {
				f = l.LockNs
			}
			_, err := f(ctx, tc.key, tc.ttl)
			require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "%s (LockNs %v)", tc.name, lockNs)
			assert.Contains(t, err.Error(), tc.arg, "%s: error names the argument", tc.name)
			assert.NotErrorIs(t, err, lockerr.ErrNotAcquired)
		}
	}
	lk, err := l.Lock(ctx, "k", time.Second)
	require.NoError(t, err)
	for _, ttl := range []time.Duration{0, -time.Second} {
		_, err = lk.Extend(ctx, ttl)
		require.ErrorIs(t, err, lockerr.ErrInvalidArgument, "Extend(%v)", ttl)
	}
	require.NoError(t, lk.Unlock(ctx), "the lock survives bad Extend calls")
	assertNoKeys(t, b)
}

func testStaleUnlock(t *testing.T, b Backend) {
	ctx := t.Context()
	l := newLocker(t, b, Opts{})
	stale, err := l.Lock(ctx, "k", 150*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(time.Until(stale.Expiration()) + 80*time.Millisecond)
	owner, err := lockSoon(t, l, "k", 2*time.Second)
	require.NoError(t, err)
	err = stale.Unlock(ctx)
	require.ErrorIs(t, err, lockerr.ErrNotHeld, "Unlock of an expired lock")
	_, err = l.Lock(ctx, "k", time.Second)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired, "the stale Unlock deleted the owner's key")
	require.NoError(t, owner.Unlock(ctx))
	assertNoKeys(t, b)
}

// testQuorum plants a foreign value on every subset of masters: Lock must
// succeed exactly when the free masters are a quorum, and a refused Lock
// must leave nothing of its own on any master.
func testQuorum(t *testing.T, b Backend) {
	ctx := t.Context()
	n := b.Masters
	quorum := n/2 + 1
	for set := range 1 << n {
		held := 0
		for i := range n {
			if set&(1<<i) != 0 {
				held++
			}
		}
		t.Run(fmt.Sprintf("held=%0*b", n, set), func(t *testing.T) {
			if b.Reset != nil {
				b.Reset(t)
			}
			l := newLocker(t, b, Opts{})
			key := fmt.Sprint("q", set)
			for i := range n {
				if set&(1<<i) != 0 {
					b.Plant(t, l, i, key, 5*time.Second)
				}
			}
			lk, err := l.Lock(ctx, key, time.Second)
			if n-held >= quorum {
				require.NoError(t, err, "%d of %d masters free", n-held, n)
				require.NoError(t, lk.Unlock(ctx))
			} else {
				require.ErrorIs(t, err, lockerr.ErrNotAcquired, "%d of %d masters free", n-held, n)
				var le *lockerr.Error
				require.ErrorAs(t, err, &le)
				taken := 0
				for _, ne := range le.Nodes {
					if errors.Is(ne, lockerr.ErrTaken) {
						taken++
					}
				}
				assert.GreaterOrEqual(t, taken, n-quorum+1, "node errors name the taken masters: %v", err)
			}
			if b.Keys != nil {
				var left []string
				assert.Eventually(t, func() bool { left = b.Keys(t); return len(left) == held }, time.Second, 5*time.Millisecond,
					"only the planted keys remain: %v", left)
			}
		})
	}
}

// testContention has goroutines increment an unprotected counter under the
// lock: any overlap shows as a lost update or a failed entry flag.
func testContention(t *testing.T, b Backend) {
	ctx := t.Context()
	const workers, rounds = 8, 15
	l := newLocker(t, b, Opts{Retry: -1, Delay: 2 * time.Millisecond})
	var (
		counter atomic.Int64 // read and written apart, so overlap loses updates
		inside  atomic.Bool
		overlap atomic.Int32
		wg      sync.WaitGroup
		errs    = make(chan error, workers*rounds)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				lk, err := l.Lock(cctx, "counter", 2*time.Second)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if !inside.CompareAndSwap(false, true) {
					overlap.Add(1)
				}
				c := counter.Load()
				time.Sleep(100 * time.Microsecond)
				counter.Store(c + 1)
				inside.Store(false)
				if err := lk.Unlock(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Zero(t, overlap.Load(), "holders overlapped")
	assert.EqualValues(t, workers*rounds, counter.Load(), "lost updates")
	assertNoKeys(t, b)
}
