package core

import (
	"math"
	"time"
)

// Quorum is how many of n masters must agree for a lock to be held: a
// majority, n/2+1 of the configured n (not of those that answered).
func Quorum(n int) int { return n/2 + 1 }

// Drift is the allowance for clock drift and Redis' 1 ms expiry precision
// taken off every validity window: round(factor*ttl) + 2ms, in whole
// milliseconds like the ttl that Redis sees.
func Drift(factor float64, ttl time.Duration) time.Duration {
	return time.Duration(math.Round(factor*float64(ttl.Milliseconds())))*time.Millisecond + 2*time.Millisecond
}

// Validity is the end of the validity window of an acquisition or
// extension that started at start (a monotonic reading taken before the
// first request went out): start + ttl - drift. The lock is held only if
// that is still in the future once a quorum has answered.
func Validity(start time.Time, ttl, drift time.Duration) time.Time {
	return start.Add(ttl - drift)
}
