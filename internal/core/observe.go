package core

import (
	"time"

	"github.com/leverege/lock/observe"
)

// Now is time.Now() when obs is set, and the zero time otherwise: the
// start of a call to report, taken only when someone will be told.
func Now(obs observe.Observer) time.Time {
	if obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// Report tells obs (when not nil) that an Extend (observe.KindExtend) or Unlock
// (observe.KindUnlock) of key, begun at began, ended with err; acquired is when
// the lock was acquired, for an Unlock's hold time. Callers take began
// only when obs is not nil, so that an unset observer costs nothing.
func Report(obs observe.Observer, kind observe.Kind, key string, began, acquired time.Time, err error) {
	if obs == nil {
		return
	}
	e := observe.Event{Kind: kind, Key: key, Err: err, Took: time.Since(began)}
	if kind == observe.KindUnlock {
		e.Held = began.Sub(acquired)
	}
	obs.Observe(e)
}
