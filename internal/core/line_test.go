package core

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leverege/lock/lockerr"
)

// eventually reports whether cond held within waitFor, checking it at
// once and then every tick.
func eventually(waitFor, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(waitFor)
	for {
		if cond() {
			return true
		}
		if time.Now().Add(tick).After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
}

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
	if !a.First() {
		t.Errorf("a.First() = false, want true: a joined first")
	}
	if b.First() {
		t.Errorf("b.First() = true, want false: a joined before b")
	}

	w.Released("k", "v1")
	if !woken(a) {
		t.Errorf(`after Released("k", "v1"): a not woken, want the first in line woken`)
	}
	if woken(b) {
		t.Errorf(`after Released("k", "v1"): b woken, want only the first in line woken`)
	}
	if woken(c) {
		t.Errorf(`after Released("k", "v1"): c woken, want only the first in line woken`)
	}

	w.Released("k", "v1") // the same release, from another master
	if woken(a) {
		t.Errorf(`after a repeat of Released("k", "v1"): a woken, want no one: a repeat woke the line again`)
	}

	w.Released("k", "v2")
	a.Leave() // woken, but gone without acting on it
	if !b.First() {
		t.Errorf("b.First() after a left = false, want true")
	}
	if !woken(b) {
		t.Errorf(`after Released("k", "v2") and a woken one leaving: b not woken, want it woken: the wake-up was lost with the caller who left`)
	}
	if woken(c) {
		t.Errorf(`after Released("k", "v2") and a leaving: c woken, want only b woken`)
	}

	w.Released("other", "x") // another key's release
	if woken(b) {
		t.Errorf(`after Released("other", "x"): b (waiting for "k") woken, want not`)
	}
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
	if busy {
		t.Errorf(`Peek("k") with no one waiting: busy = true, want false`)
	}
	w.Released("k", "v")
	a := w.Join("k", epoch)
	if !woken(a) {
		t.Errorf(`Join("k", epoch of before a release) not woken, want woken at once: the release during the attempt was missed`)
	}

	epoch, _ = w.Peek("k")
	b := w.Join("k", epoch)
	if woken(b) {
		t.Errorf(`Join("k", current epoch) woken, want not: woken with no release`)
	}
	_, busy = w.Peek("k")
	if !busy {
		t.Errorf(`Peek("k") with a and b waiting: busy = false, want true`)
	}
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
	if !eventually(time.Second, time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 }) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("Watch and Unwatch calls within 1s = %q, want 2 of them", events)
	}
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"watch k", "unwatch k"}; !slices.Equal(events, want) {
		t.Errorf("Watch and Unwatch calls = %q, want %q", events, want)
	}
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
	if !errors.Is(err, lockerr.ErrNotAcquired) {
		t.Fatalf("run(Retry{Count: 3}, behind another in line) err = %v, want ErrNotAcquired", err)
	}
	if calls != 1 {
		t.Errorf("run(Retry{Count: 3}, behind another in line) made %d attempts, want 1: a caller behind another one tries only its last attempt", calls)
	}
	var e *lockerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("run(Retry{Count: 3}, behind another in line) err = %v, want a *lockerr.Error", err)
	}
	if e.Attempts != 4 {
		t.Errorf("run(Retry{Count: 3}, behind another in line) err.Attempts = %d, want 4: its delays count as attempts", e.Attempts)
	}
	if !errors.Is(err, lockerr.ErrTaken) {
		t.Errorf("run(Retry{Count: 3}, behind another in line) err = %v, want ErrTaken: the error names what the masters said", err)
	}

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
	if err != nil {
		t.Fatalf("run(first in line, Delay 1h, released after its first attempt) err = %v, want nil: not woken by the release", err)
	}
	if got != 7 {
		t.Errorf("run(first in line, released after its first attempt) = %d, want 7", got)
	}
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
	if !errors.Is(err, lockerr.ErrNotAcquired) {
		t.Fatalf("run(Retry{Count: 0}, others in line) err = %v, want ErrNotAcquired", err)
	}
	if calls != 1 {
		t.Errorf("run(Retry{Count: 0}, others in line) made %d attempts, want 1", calls)
	}
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
	if !watched {
		t.Errorf("Join while the key's Unwatch runs: watched = false once it ends, want true: a key with a waiter is left unwatched")
	}
	mu.Unlock()
	t2.Leave()
	w.Stop()
}
