package redlock

import (
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
)

// node is one independent master.
type node struct {
	pool *redis.Pool
	link *link
	name string
	// plainDel breaks release on purpose (core.Variant), for the safety
	// suite only.
	plainDel bool
}

// The requests. Each fills in a call; its read turns the reply into a vote.

// acquire sets key to value for ttl unless the key exists. With a restart
// delay (nil for none), the master refuses to vote for a while after it lost its data; with
// fence, the yes carries 1 + the key's fencing counter (see acquire.lua).
//
// many, when not nil, are the keys of a lock on several keys (key is then
// the first); all of them are set, or none.
//
// The arguments come boxed (any) so that a poll boxes them once for all
// masters.
func (n *node) acquire(c *call, key any, many []any, value, fenceKey, ttl, restartDelay any, fence bool) {
	if restartDelay != nil || fence || many != nil {
		if restartDelay == nil {
			restartDelay = int64(0)
		}
		flag := "0"
		if fence {
			flag = "1"
		}
		c.cmd, c.read, c.src = "EVALSHA", readAcquire, acquireSrc
		if many == nil {
			c.args = []any{acquireSHA, 3, key, MarkerKey, fenceKey, value, ttl, restartDelay, flag}
			return
		}
		c.args = append(append(append(make([]any, 0, len(many)+8), acquireSHA, len(many)+2), many...),
			MarkerKey, fenceKey, value, ttl, restartDelay, flag)
		return
	}
	c.cmd, c.read = "SET", readSet
	c.argv[0], c.argv[1], c.argv[2], c.argv[3], c.argv[4] = key, value, "NX", "PX", ttl
	c.args = c.argv[:5]
}

// release deletes key (or the keys in many) where it holds value.
func (n *node) release(c *call, key any, many []any, value any) {
	if n.plainDel {
		c.cmd, c.read = "DEL", readAny
		if many != nil {
			c.args = many
			return
		}
		c.argv[0] = key
		c.args = c.argv[:1]
		return
	}
	c.cmd, c.read, c.src, c.resend = "EVALSHA", readCompare, releaseSrc, true
	if many != nil {
		c.args = append(append(append(make([]any, 0, len(many)+3), releaseSHA, len(many)), many...), value)
		return
	}
	c.argv[0], c.argv[1], c.argv[2], c.argv[3] = releaseSHA, 1, key, value
	c.args = c.argv[:4]
}

// extend resets the ttl of key (or of all the keys in many, or of none)
// where it holds value.
func (n *node) extend(c *call, key any, many []any, value, ttl any) {
	c.cmd, c.read, c.src, c.resend = "EVALSHA", readCompare, extendSrc, true
	if many != nil {
		c.args = append(append(append(make([]any, 0, len(many)+4), extendSHA, len(many)), many...), value, ttl)
		return
	}
	c.argv[0], c.argv[1], c.argv[2], c.argv[3], c.argv[4] = extendSHA, 1, key, value, ttl
	c.args = c.argv[:5]
}

// raise writes token back to key's fencing counter where key still holds
// value (see fence.lua).
func (n *node) raise(c *call, key, fenceKey, value any, token int64) {
	c.cmd, c.read, c.src, c.resend = "EVALSHA", readCompare, fenceSrc, true
	c.argv[0], c.argv[1], c.argv[2], c.argv[3], c.argv[4], c.argv[5] = fenceSHA, 2, key, fenceKey, value, token
	c.args = c.argv[:6]
}

// announce publishes that key holding value was released, on the key's
// released channel; no one waits for the answer.
func (n *node) announce(key, value string) {
	c := &call{cmd: "PUBLISH", read: readAny}
	c.argv[0], c.argv[1] = ReleasedChannel+key, value
	c.args = c.argv[:2]
	n.link.send(c)
}

// readSet: OK means set, nil means the key exists.
func readSet(reply any) (int64, error) {
	if reply == nil {
		return 0, core.ErrTaken
	}
	return 0, nil
}

// readAcquire: 1 + the fencing counter means set, 0 that the key exists,
// -N that the master's vote counts again in N ms.
func readAcquire(reply any) (int64, error) {
	n, err := redis.Int64(reply, nil)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, core.ErrTaken
	case n < 0:
		wait := time.Duration(-n) * time.Millisecond
		return 0, fmt.Errorf("%w: restarted or lost its data; its vote counts again in %v", core.ErrRejoining, wait)
	}
	return n, nil
}

// readCompare reads a compare-and-act script's reply: 1 when it acted, 0
// when the key is gone here or holds another value (NotHeldHere).
func readCompare(reply any) (int64, error) {
	n, err := redis.Int(reply, nil)
	switch {
	case err != nil:
		return 0, err
	case n != 1:
		return 0, core.NotHeldHere
	}
	return 0, nil
}

func readAny(any) (int64, error) { return 0, nil }
