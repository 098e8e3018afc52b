package lockerr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrorMessage(t *testing.T) {
	err := &Error{Op: "lock", Key: "app:k", Attempts: 3, Err: ErrNotAcquired, Cause: context.Canceled, Nodes: []*NodeError{
		{Node: 0, Addr: "10.0.0.1:6379", Err: ErrTaken},
		{Node: 2, Addr: "10.0.0.3:6379", Err: fmt.Errorf("%w: i/o timeout", ErrUnreachable)},
	}}
	const want = `lock: lock "app:k": not acquired after 3 attempts: context canceled: ` +
		`node 0 (10.0.0.1:6379): held by another owner; node 2 (10.0.0.3:6379): unreachable: i/o timeout`
	if got := err.Error(); got != want {
		t.Errorf("Error() =\n%q\nwant\n%q", got, want)
	}
	var ne *NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("errors.As(%v, *NodeError) = false, want true", err)
	}
	if ne.Node != 0 {
		t.Errorf("errors.As(err, *NodeError) found node %d, want 0 (the first)", ne.Node)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(%v, ErrUnreachable) = false, want true", err)
	}
	if errors.Is(err, ErrNotHeld) {
		t.Errorf("errors.Is(%v, ErrNotHeld) = true, want false", err)
	}

	one := &Error{Op: "unlock", Key: "k", Attempts: 1, Err: ErrNotHeld}
	if got, want := one.Error(), `lock: unlock "k": not held`; got != want {
		t.Errorf("Error() of one attempt = %q, want %q", got, want)
	}
	gone := &Error{Op: "lock", Key: "k", Err: ErrDestroyed}
	if got, want := gone.Error(), `lock: lock "k": destroyed`; got != want {
		t.Errorf("Error() with no attempts = %q, want %q", got, want)
	}
	if !errors.Is(one, ErrNotHeld) {
		t.Errorf("errors.Is(%v, ErrNotHeld) = false, want true", one)
	}
}

func TestNotHeldHere(t *testing.T) {
	if errors.Is(ErrNotHeldHere, ErrNotHeld) {
		t.Errorf("errors.Is(ErrNotHeldHere, ErrNotHeld) = true, want false: one master's answer is not the call's outcome")
	}
	// An Extend that missed a quorum while one master no longer held the
	// key is not a lost lock.
	noQuorum := &Error{Op: "extend", Key: "k", Attempts: 1, Err: ErrNoQuorum, Nodes: []*NodeError{
		{Node: 0, Addr: "a", Err: ErrNotHeldHere}, {Node: 1, Addr: "b", Err: fmt.Errorf("%w: no answer", ErrUnreachable)}}}
	if errors.Is(noQuorum, ErrNotHeld) || !errors.Is(noQuorum, ErrNoQuorum) || !errors.Is(noQuorum, ErrNotHeldHere) {
		t.Errorf("errors.Is(%v, ErrNotHeld, ErrNoQuorum, ErrNotHeldHere) = %v, %v, %v; want false, true, true", noQuorum,
			errors.Is(noQuorum, ErrNotHeld), errors.Is(noQuorum, ErrNoQuorum), errors.Is(noQuorum, ErrNotHeldHere))
	}
	if got, want := (&NodeError{Node: 1, Addr: "a", Err: ErrNotHeldHere}).Error(), "node 1 (a): not held here"; got != want {
		t.Errorf("NodeError.Error() = %q, want %q", got, want)
	}
}
