package redlock

import (
	"context"
	"errors"

	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/lockerr"
)

// Fencing (WithFencing): the acquiring script reads each key's counter,
// FenceKeyPrefix+key, along with its SET, and a yes carries 1 + the
// counter. The token is the largest of those from the masters that granted
// the lock, written back to a quorum (fence.lua) before Lock returns.
// Since that write reaches a quorum, and the next acquisition's SET does
// too, one of the masters it reads from has this token or a later one:
// tokens only grow.

// fenceKey is the key of key's fencing counter.
func fenceKey(key string) string { return FenceKeyPrefix + key }

// errNotFenced is why an attempt that a quorum granted failed all the same:
// its fencing token could not be written back to a quorum (the masters'
// answers to that write are the attempt's node errors).
var errNotFenced = errors.New("fencing token not written to a quorum")

// fence gives out the token of an acquisition that a quorum granted,
// written back to a quorum while the key still holds value there; masters
// that answered the acquisition "taken" are not asked. It fails, with the
// masters' answers, when no quorum took it: the attempt then fails, and no
// token is given out.
func (c *Client) fence(acq *fanout, key string, value any) (uint64, []*lockerr.NodeError, error) {
	token := acq.largest()
	w := c.send(context.Background(), fenceWrite{key: key, value: value, token: token}, acq)
	w.flush()
	defer w.stop()
	if w.decide() {
		return uint64(token), nil, nil
	}
	return 0, w.failures(), errNotFenced
}

// fenceWrite raises key's fencing counter to token where key still holds
// value (fence.lua).
type fenceWrite struct {
	key   string
	value any // the lock's value, boxed (lockValue.arg)
	token int64
}

func (f fenceWrite) op() op       { return opFence }
func (f fenceWrite) grants() bool { return false }

func (f fenceWrite) command(args []any) pipeline.Call {
	args = append(args, fenceSHA, 2, f.key, fenceKey(f.key), f.value, f.token)
	return pipeline.Call{Cmd: "EVALSHA", Args: args, Script: fenceScript, Resend: true}
}

func (f fenceWrite) vote(reply any) (int64, error) { return compared(reply) }
