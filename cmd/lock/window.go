package main

import (
	"time"

	"github.com/leverege/lock/internal/safety"
)

// windowLog records validity windows for internal/safety's checker, on the
// machine-wide monotonic clock.
type windowLog struct{ r safety.Recorder }

func monoNow() int64 { return safety.Mono() }

func (w *windowLog) held(key, holder string, start, released int64, exp time.Time) {
	w.r.Held(key, holder, start, released, exp)
}

// check returns the number of overlapping pairs and the first few.
func (w *windowLog) check() (int, []string) {
	vs := safety.Check(w.r.Windows())
	var ex []string
	for _, v := range vs[:min(len(vs), 3)] {
		ex = append(ex, v.String())
	}
	return len(vs), ex
}
