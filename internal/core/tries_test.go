package core

import (
	"context"

	"github.com/leverege/lock/lockerr"
)

// attempt is the outcome of one try in the tests below: held, or the
// per-node failures that explain why not.
type attempt[L any] struct {
	Lock  L
	OK    bool
	Nodes []*lockerr.NodeError
	Why   error
}

// run drives Tries as a backend's loop does, with try in place of the
// masters and undo for a lock won while Destroy (stop) was starting.
func run[L any](ctx context.Context, stop <-chan struct{}, r Retry, key string, try func(context.Context) attempt[L], undo func(L), w *Line) (L, error) {
	var zero L
	var t Tries
	t.Start(ctx, stop, r, w, key, nil)
	defer t.Stop()
	for t.Next() {
		a := try(ctx)
		if !a.OK {
			t.Failed(Failure{Nodes: a.Nodes, Why: a.Why})
			continue
		}
		if err := t.Won(); err != nil {
			undo(a.Lock)
			return zero, err
		}
		return a.Lock, nil
	}
	return zero, t.Err()
}
