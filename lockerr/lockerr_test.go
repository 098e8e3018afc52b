package lockerr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorMessage(t *testing.T) {
	err := &Error{Op: "lock", Key: "app:k", Attempts: 3, Err: ErrNotAcquired, Cause: context.Canceled, Nodes: []*NodeError{
		{Node: 0, Addr: "10.0.0.1:6379", Err: ErrTaken},
		{Node: 2, Addr: "10.0.0.3:6379", Err: fmt.Errorf("%w: i/o timeout", ErrUnreachable)},
	}}
	assert.Equal(t, `lock: lock "app:k": not acquired after 3 attempts: context canceled: `+
		`node 0 (10.0.0.1:6379): held by another owner; node 2 (10.0.0.3:6379): unreachable: i/o timeout`, err.Error())
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, 0, ne.Node)
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.NotErrorIs(t, err, ErrNotHeld)

	one := &Error{Op: "unlock", Key: "k", Attempts: 1, Err: ErrNotHeld}
	assert.Equal(t, `lock: unlock "k": not held`, one.Error())
	gone := &Error{Op: "lock", Key: "k", Err: ErrDestroyed}
	assert.Equal(t, `lock: lock "k": destroyed`, gone.Error())
	assert.True(t, errors.Is(one, ErrNotHeld))
}

func TestNotHeldHere(t *testing.T) {
	assert.ErrorIs(t, ErrNotHeldHere, ErrNotHeld)
	assert.Equal(t, "node 1 (a): not held here", (&NodeError{Node: 1, Addr: "a", Err: ErrNotHeldHere}).Error())
}

// fakeLock and fakeLocker are a Locker whose one lock can be checked for
// release, for Do's bookkeeping.
