// Package safety checks mutual exclusion from the outside: every holder
// records the window in which it believed it held a key, on a clock that
// every process on the machine shares, and any two windows of one key that
// intersect are a violation.
//
// A holder's window is [the moment Lock returned, min(the moment it called
// Unlock, its Expiration)]: the library promises exclusivity only until
// Expiration, so a holder that keeps working past it is not counted against
// the lock.
package safety

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Window is one holder's claim on a key, in nanoseconds of Mono.
type Window struct {
	Key    string `json:"key"`
	Holder string `json:"holder"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"`
}

// Violation is two holders whose windows on one key intersect.
type Violation struct{ A, B Window }

func (v Violation) String() string {
	return fmt.Sprintf("%q: %s held [%d, %d] and %s held [%d, %d], overlapping %v",
		v.A.Key, v.A.Holder, v.A.Start, v.A.End, v.B.Holder, v.B.Start, v.B.End,
		time.Duration(min(v.A.End, v.B.End)-max(v.A.Start, v.B.Start)))
}

// Check returns every pair of intersecting windows of the same key (empty
// windows, whose End is not after their Start, claim nothing). Windows that
// merely touch (one ends where the next starts) do not intersect.
func Check(ws []Window) []Violation {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b Window) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Start, b.Start))
	})
	var out []Violation
	for i, a := range ws {
		if a.End <= a.Start {
			continue
		}
		for _, b := range ws[i+1:] {
			if b.Key != a.Key || b.Start >= a.End {
				break
			}
			if b.End > b.Start {
				out = append(out, Violation{a, b})
			}
		}
	}
	return out
}

// Recorder collects windows from many goroutines.
type Recorder struct {
	mu sync.Mutex
	ws []Window
}

// Held records that holder held key from start until min(released, expiration),
// with start and released from Mono and expiration from the lock.
func (r *Recorder) Held(key, holder string, start, released int64, expiration time.Time) {
	r.Add(Window{Key: key, Holder: holder, Start: start, End: min(released, MonoAt(expiration))})
}

// Add records one window.
func (r *Recorder) Add(w Window) {
	r.mu.Lock()
	r.ws = append(r.ws, w)
	r.mu.Unlock()
}

// Windows returns what was recorded.
func (r *Recorder) Windows() []Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ws)
}

// MonoAt converts t, which must carry a monotonic reading of this process
// (as a lock's Expiration does), to Mono's scale. Go's monotonic readings
// and Mono count on the same clock, so one offset, measured once, maps
// every reading without a clock read racing another.
func MonoAt(t time.Time) int64 { return offset + int64(t.Sub(ref)) }

var ref = time.Now()

// offset is Mono at ref: the tightest of a few bracketed samples.
var offset = func() int64 {
	best, off := int64(math.MaxInt64), int64(0)
	for range 32 {
		a := Mono()
		since := int64(time.Since(ref))
		b := Mono()
		if b-a < best {
			best, off = b-a, a+(b-a)/2-since
		}
	}
	return off
}()
