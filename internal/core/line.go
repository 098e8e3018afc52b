package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// Line queues, per key, the callers in this process that wait for a lock
// someone else holds, first come first served, and wakes the first of them
// when the lock is released. Only the first in line retries on a release,
// so a release starts one attempt per process rather than a stampede, and a
// caller that has waited longest is never overtaken by one that arrived
// later in the same process. The timed retry stays as the fallback (a lock
// that expires sends no release), so waking is only ever an optimisation.
// The zero Line is ready to use and watches nothing.
type Line struct {
	// Watch is called when a key gets its first waiter, Unwatch when it has
	// had none for Linger; a backend subscribes to the key's releases
	// there. Both run with the Line's lock held, so that they come in
	// order; they may be nil, and must neither block nor call back.
	Watch, Unwatch func(key string)
	// Linger keeps a key watched that long after its last waiter left, so
	// that a key contended on and off is not subscribed to every time.
	Linger time.Duration

	mu   sync.Mutex
	keys map[string]*queue
	// watched is len(keys), read without mu: with no key watched (no one
	// in this process has waited lately), Peek, Released, HandOver and
	// WakeLater return at once, so uncontended locking never takes mu.
	watched atomic.Int32
}

type queue struct {
	line   []*Ticket
	streak int    // releases handed over in a row
	limit  int    // how many this streak may hand over
	epoch  uint64 // releases seen
	last   string // the value last released, to tell repeats apart
	idle   *time.Timer
	// gen tells a linger timer whether the queue was used after it was set.
	gen uint64
}

// Ticket is a caller's place in a key's line.
type Ticket struct {
	w    *Line
	key  string
	wake chan struct{}
}

// Peek returns the number of releases seen for key so far, to be passed to
// Join, and whether others already wait for it, in which case a caller
// should join the line rather than try first.
func (w *Line) Peek(key string) (epoch uint64, busy bool) {
	if w.watched.Load() == 0 {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if q := w.keys[key]; q != nil {
		return q.epoch, len(q.line) > 0
	}
	return 0, false
}

// Join puts the caller at the end of key's line. epoch is what Peek
// returned before the caller's first attempt: if a release came since, the
// caller, when first in line, is woken at once, so that a release that
// happened while it was trying is not missed.
func (w *Line) Join(key string, epoch uint64) *Ticket {
	t := &Ticket{w: w, key: key, wake: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.keys == nil {
		w.keys = make(map[string]*queue)
	}
	q := w.keys[key]
	fresh := q == nil
	if fresh {
		q = &queue{}
		w.keys[key] = q
		w.watched.Add(1)
	}
	q.gen++
	q.line = append(q.line, t)
	if len(q.line) == 1 && !fresh && q.epoch != epoch {
		t.wake <- struct{}{}
	}
	if fresh && w.Watch != nil {
		w.Watch(key)
	}
	w.mu.Unlock()
	return t
}

// Wake is signalled when the lock is released while the caller is first in
// line.
func (t *Ticket) Wake() <-chan struct{} { return t.wake }

// First reports whether the caller is first in line.
func (t *Ticket) First() bool {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	q := t.w.keys[t.key]
	return q != nil && len(q.line) > 0 && q.line[0] == t
}

// Leave takes the caller out of line. A release it was woken for but did
// not act on passes to the next in line.
func (t *Ticket) Leave() {
	w := t.w
	w.mu.Lock()
	q := w.keys[t.key]
	if q == nil {
		w.mu.Unlock()
		return
	}
	for i, o := range q.line {
		if o != t {
			continue
		}
		q.line = append(q.line[:i], q.line[i+1:]...)
		if i == 0 && len(q.line) > 0 {
			select {
			case <-t.wake:
				q.line[0].signal()
			default:
			}
		}
		break
	}
	if len(q.line) == 0 && w.linger(t.key, q) && w.Unwatch != nil {
		w.Unwatch(t.key)
	}
	w.mu.Unlock()
}

// linger forgets an empty queue after w.Linger unless it is used again; it
// reports whether it forgot it at once (Linger 0), in which case the caller
// calls Unwatch. Called with w.mu held.
func (w *Line) linger(key string, q *queue) bool {
	if w.Linger <= 0 {
		delete(w.keys, key)
		w.watched.Add(-1)
		return true
	}
	q.gen++
	gen := q.gen
	if q.idle != nil {
		q.idle.Stop()
	}
	q.idle = time.AfterFunc(w.Linger, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.keys[key] != q || q.gen != gen || len(q.line) > 0 {
			return
		}
		delete(w.keys, key)
		w.watched.Add(-1)
		if w.Unwatch != nil {
			w.Unwatch(key)
		}
	})
	return false
}

// record notes the release of key holding value and returns key's queue,
// or nil when no one waits for key or this release was seen already.
// Called with w.mu held.
func (w *Line) record(key, value string) *queue {
	q := w.keys[key]
	if q == nil || q.last == value {
		return nil
	}
	q.last = value
	q.epoch++
	return q
}

// Released records that the lock on key holding value was released, and
// wakes the first in line. Repeats of the same release (each master
// announces it) wake no one again.
func (w *Line) Released(key, value string) {
	if w.watched.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if q := w.record(key, value); q != nil && len(q.line) > 0 {
		q.line[0].signal()
	}
}

// HandOver decides how a release of key should go. True: this process has
// a waiter and its turn has come; the releaser wakes it (Released) before
// the release is on its way, so that its attempt follows the release on
// every master, and does not announce the release to other processes.
// False: the release is announced, and every process's first waiter races
// for the lock. A streak serves, once each, the waiters that were in line
// when it began, so that waiters elsewhere are not starved.
func (w *Line) HandOver(key string) bool {
	if w.watched.Load() == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.keys[key]
	if q == nil {
		return false
	}
	if q.streak == 0 {
		q.limit = len(q.line)
	}
	if len(q.line) == 0 || q.streak >= q.limit {
		q.streak = 0
		return false
	}
	q.streak++
	return true
}

// WakeLater records the release of key holding value, like Released, but
// wakes the first in line only after d, and ignores the release's
// announcement meanwhile: a releaser that has just handed the lock to its own waiters
// for a streak leaves the next turn to waiters in other processes, which
// its announcement wakes, if there are any.
func (w *Line) WakeLater(key, value string, d time.Duration) {
	if w.watched.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.record(key, value)
	if q == nil {
		return
	}
	time.AfterFunc(d, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.keys[key] == q && q.last == value && len(q.line) > 0 {
			q.line[0].signal()
		}
	})
}

// Stop forgets every queue and stops their linger timers, without
// Unwatch: the backend is shutting down.
func (w *Line) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range w.keys {
		if q.idle != nil {
			q.idle.Stop()
		}
	}
	w.keys = nil
	w.watched.Store(0)
}

func (t *Ticket) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
