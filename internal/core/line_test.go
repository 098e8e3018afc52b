package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leverege/lock/lockerr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func woken(t *Ticket) bool {
	select {
	case <-t.Wake():
		return true
	default:
		return false
	}
}

// TestLineWakeFirstOnly: a release wakes the first in line and no one
// else; a repeat of the same release (another master's announcement) wakes
// no one; leaving passes an unused wake-up to the next.
func TestLineWakeFirstOnly(t *testing.T) {
	var w Line
	a := w.Join("k", 0)
	b := w.Join("k", 0)
	c := w.Join("k", 0)
	assert.True(t, a.First())
	assert.False(t, b.First())

	w.Released("k", "v1")
	assert.True(t, woken(a))
	assert.False(t, woken(b))
	assert.False(t, woken(c))

	w.Released("k", "v1") // the same release, from another master
	assert.False(t, woken(a), "a repeat woke the line again")

	w.Released("k", "v2")
	a.Leave() // woken, but gone without acting on it
	assert.True(t, b.First())
	assert.True(t, woken(b), "the wake-up was lost with the caller who left")
	assert.False(t, woken(c))

	w.Released("other", "x") // another key's release
	assert.False(t, woken(b))
	b.Leave()
	c.Leave()
}

// TestLineMissedRelease: a release between a caller's Peek and its Join
// (while its first attempt was on the wire) wakes it at once.
func TestLineMissedRelease(t *testing.T) {
	w := Line{Linger: time.Minute}
	defer w.Stop()
	hold := w.Join("k", 0) // keeps the queue alive
	hold.Leave()
	epoch, busy := w.Peek("k")
	assert.False(t, busy)
	w.Released("k", "v")
	a := w.Join("k", epoch)
	assert.True(t, woken(a), "the release during the attempt was missed")

	epoch, _ = w.Peek("k")
	b := w.Join("k", epoch)
	assert.False(t, woken(b), "woken with no release")
	_, busy = w.Peek("k")
	assert.True(t, busy)
	a.Leave()
	b.Leave()
}

// TestLineWatch: a key is watched from its first waiter until it has
// had none for Linger, and is not unwatched while reused.
func TestLineWatch(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e string) func(string) {
		return func(k string) { mu.Lock(); events = append(events, e+" "+k); mu.Unlock() }
	}
	w := Line{Watch: record("watch"), Unwatch: record("unwatch"), Linger: 30 * time.Millisecond}
	a := w.Join("k", 0)
	b := w.Join("k", 0)
	a.Leave()
	b.Leave()
	c := w.Join("k", 0) // back within the linger: still watched
	c.Leave()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 }, time.Second, time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"watch k", "unwatch k"}, events)
}

// TestRunQueued: with a line, a caller behind another makes no attempt
// when its delay passes, only counts it, but for its last; the first in line
// is the one that tries, and tries as soon as it is woken.
func TestRunQueued(t *testing.T) {
	var w Line
	ahead := w.Join("k", 0) // someone of this process waits already
	defer ahead.Leave()
	calls := 0
	_, err := run(t.Context(), nil, Retry{Count: 3, Delay: time.Millisecond}, "k", func(context.Context) attempt[int] {
		calls++
		return attempt[int]{Nodes: []*lockerr.NodeError{{Err: lockerr.ErrTaken}}}
	}, nil, &w)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.Equal(t, 1, calls, "a caller behind another one tries only its last attempt")
	var e *lockerr.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 4, e.Attempts, "its delays count as attempts")
	assert.ErrorIs(t, err, lockerr.ErrTaken, "the error names what the masters said")

	// First in line, with a delay far longer than the test: a release
	// wakes it at once.
	ahead.Leave()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	tries := make(chan struct{}, 10)
	attempts := 0
	go func() {
		<-tries // the first attempt failed; now it waits in line
		for !w.line("k") {
			time.Sleep(time.Millisecond)
		}
		w.Released("k", "v")
	}()
	got, err := run(ctx, nil, Retry{Count: -1, Delay: time.Hour}, "k", func(context.Context) attempt[int] {
		attempts++
		tries <- struct{}{}
		return attempt[int]{OK: attempts == 2, Lock: 7}
	}, nil, &w)
	require.NoError(t, err, "not woken by the release")
	assert.Equal(t, 7, got)
}

// line reports whether someone waits for key.
func (w *Line) line(key string) bool {
	_, busy := w.Peek(key)
	return busy
}

// TestRunSingleAttemptSkipsLine: with no retries, a caller makes its one
// attempt even when others wait, and never joins the line.
func TestRunSingleAttemptSkipsLine(t *testing.T) {
	var w Line
	ahead := w.Join("k", 0)
	defer ahead.Leave()
	calls := 0
	_, err := run(t.Context(), nil, Retry{Count: 0}, "k", func(context.Context) attempt[int] {
		calls++
		return attempt[int]{}
	}, nil, &w)
	require.ErrorIs(t, err, lockerr.ErrNotAcquired)
	assert.Equal(t, 1, calls)
}

// TestLineWatchInOrder: a key forgotten after its linger and joined
// again at once is watched again, never left unwatched with waiters: Watch
// and Unwatch come in the order of the events.
func TestLineWatchInOrder(t *testing.T) {
	var (
		mu      sync.Mutex
		watched bool // a subscription is on or off, as Watch and Unwatch leave it
	)
	unwatching, proceed, unwatched := make(chan struct{}), make(chan struct{}), make(chan struct{})
	w := Line{Linger: time.Millisecond,
		Watch: func(string) { mu.Lock(); watched = true; mu.Unlock() },
		Unwatch: func(string) {
			close(unwatching)
			<-proceed // an unsubscribe that takes a while
			mu.Lock()
			watched = false
			mu.Unlock()
			close(unwatched)
		},
	}
	w.Join("k", 0).Leave()
	<-unwatching // the linger ran out: the key is being unwatched
	joined := make(chan *Ticket)
	go func() { joined <- w.Join("k", 0) }() // a new waiter, meanwhile
	time.Sleep(5 * time.Millisecond)
	close(proceed)
	t2 := <-joined
	<-unwatched
	mu.Lock()
	assert.True(t, watched, "a key with a waiter is left unwatched")
	mu.Unlock()
	t2.Leave()
	w.Stop()
}
