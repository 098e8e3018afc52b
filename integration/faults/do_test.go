package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
)

// TestDoLostOnMajorityPause (scenario 13): work under lock.Do, kept alive
// across many ttls, while two of three masters are paused (docker pause):
// the Extends can no longer reach a quorum, and the function's context ends
// with ErrLost before the validity of the last Extend that succeeded, which
// began before the pause, could have ended. Do then returns, with the loss
// told apart from the function's own error.
func TestDoLostOnMajorityPause(t *testing.T) {
	ms := masters(t, 3)
	const ttl = 1500 * time.Millisecond
	l := lock.Redis(newClient(t, addrs(ms)))
	errStopped := errors.New("work stopped")
	var (
		paused, endedAt time.Time
		cause           error
	)
	err := lock.Do(t.Context(), l, "job", ttl, func(ctx context.Context, held lock.Lock) error {
		// Healthy: the lock outlives its ttl several times over.
		select {
		case <-ctx.Done():
			return errors.New("lost while the masters were healthy")
		case <-time.After(3 * ttl):
		}
		for _, m := range ms[1:] {
			require.NoError(t, m.Pause(t.Context()))
		}
		// Read once both are paused: an Extend that began while they were
		// being paused may still have succeeded.
		paused = time.Now()
		select {
		case <-ctx.Done():
			endedAt, cause = time.Now(), context.Cause(ctx)
			return errStopped
		case <-time.After(3 * ttl):
			return nil
		}
	})
	for _, m := range ms[1:] {
		require.NoError(t, m.Unpause(t.Context()))
	}
	require.ErrorIs(t, err, errStopped, "the function's context never ended")
	require.ErrorIs(t, err, lock.ErrLost)
	require.ErrorIs(t, cause, lock.ErrLost)
	// Every Extend that succeeded began before both masters were paused,
	// so no validity runs past paused+ttl.
	assert.True(t, endedAt.Before(paused.Add(ttl)), "context ended %v after the pause; the validity ends by %v",
		endedAt.Sub(paused), ttl)
	report(t, "scenario 13: N=3 ttl=%v, two masters paused: context ended %v after the pause (%v before any validity could end), cause %q",
		ttl, endedAt.Sub(paused).Round(time.Millisecond), paused.Add(ttl).Sub(endedAt).Round(time.Millisecond), cause)
}
