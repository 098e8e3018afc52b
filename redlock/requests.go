package redlock

import (
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/lockerr"
)

// A request is what the algorithm asks of every master at once: one type
// per kind, turned into a command once per fan-out (every master gets the
// same), and a reader of each master's reply.
type request interface {
	op() op
	// grants reports whether a yes grants the lock time on the key
	// (acquire, extend): such a yes counts only from a master whose policy
	// cannot evict keys (WithRequireNoEviction) and once enough replicas
	// have it (WithReplicaAcks).
	grants() bool
	// command builds the command; its arguments go into args, a buffer
	// with room for the usual sizes.
	command(args []any) pipeline.Call
	// vote reads a master's reply: nil for yes (with what a yes carries: a
	// fencing counter, or 0), or why not.
	vote(reply any) (int64, error)
}

// op names a kind of request, for the observer (Event.Op).
type op uint8

const (
	opAcquire op = iota + 1
	opRelease
	opExtend
	opFence
)

// replicated is the reply to the WAIT that follows a granting request with
// WithReplicaAcks: how many replicas have the write. want is how many must.
func replicated(reply any, want int) error {
	n, err := redis.Int(reply, nil)
	switch {
	case err != nil:
		return err
	case n < want:
		return fmt.Errorf("%w: %d of the %d replicas required acknowledged", lockerr.ErrNotReplicated, n, want)
	}
	return nil
}

func (o op) String() string {
	switch o {
	case opAcquire:
		return "acquire"
	case opRelease:
		return "release"
	case opExtend:
		return "extend"
	case opFence:
		return "fence"
	}
	return "unknown"
}

// keySet is the keys of one lock: one key, or the set that LockAll locks
// (the first is the lock's Key), boxed once as command arguments for every
// request of the lock.
type keySet struct {
	first    string
	all      []string // nil for a single key
	firstArg any      // first, boxed
	allArgs  []any    // all, boxed; nil for a single key
}

func newKeySet(first string, all []string) keySet {
	k := keySet{first: first, all: all, firstArg: first}
	if all != nil {
		k.allArgs = make([]any, len(all))
		for i, s := range all {
			k.allArgs[i] = s
		}
	}
	return k
}

// count is the number of keys.
func (k keySet) count() int { return max(len(k.all), 1) }

// appendTo appends the keys to a command's arguments.
func (k keySet) appendTo(args []any) []any {
	if k.allArgs == nil {
		return append(args, k.firstArg)
	}
	return append(args, k.allArgs...)
}

// lockValue is an acquisition's random value, and the same boxed once as
// a command argument for every request of the lock.
type lockValue struct {
	s   string
	arg any
}

func newLockValue(s string) lockValue { return lockValue{s, s} }

// acquisition sets the lock's keys to value for ttl on a master that
// holds none of them: a plain SET NX PX for one key, or acquire.lua, which
// sets a set of keys all or none and adds the options.
type acquisition struct {
	keys  keySet
	value lockValue
	ttl   time.Duration
	// restartDelay > 0: a master that lost its data less than this long ago
	// answers "rejoining" instead (see restart.go).
	restartDelay time.Duration
	// fence: a yes carries 1 + the key's fencing counter (see fencing.go).
	fence bool
}

func (a acquisition) op() op       { return opAcquire }
func (a acquisition) grants() bool { return true }

func (a acquisition) scripted() bool {
	return a.restartDelay > 0 || a.fence || a.keys.all != nil
}

func (a acquisition) command(args []any) pipeline.Call {
	ms := a.ttl.Milliseconds()
	if !a.scripted() {
		return pipeline.Call{Cmd: "SET", Args: append(args, a.keys.firstArg, a.value.arg, "NX", "PX", ms)}
	}
	// KEYS: the lock's keys, then the marker with the restart protection
	// and the first key's fencing counter with fencing (a key not used is
	// not named: an ACL checks every key a script is given). ARGV: value,
	// ttl, restart delay (0: off), "1" to fence.
	nkeys := a.keys.count()
	flag := "0"
	if a.restartDelay > 0 {
		nkeys++
	}
	if a.fence {
		nkeys++
		flag = "1"
	}
	args = append(args, acquireSHA, nkeys)
	args = a.keys.appendTo(args)
	if a.restartDelay > 0 {
		args = append(args, MarkerKey)
	}
	if a.fence {
		args = append(args, fenceKey(a.keys.first))
	}
	args = append(args, a.value.arg, ms, a.restartDelay.Milliseconds(), flag)
	return pipeline.Call{Cmd: "EVALSHA", Args: args, Script: acquireScript}
}

// vote: SET answers OK (set) or nil (a key exists); the script answers 0
// (a key exists), -N (rejoining for N more ms) or 1 + the fencing counter.
func (a acquisition) vote(reply any) (int64, error) {
	if !a.scripted() {
		if reply == nil {
			return 0, lockerr.ErrTaken
		}
		return 0, nil
	}
	n, err := redis.Int64(reply, nil)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, lockerr.ErrTaken
	case n < 0:
		return 0, rejoining(n)
	case !a.fence:
		return 0, nil
	}
	return n, nil
}

// release deletes the lock's keys where they still hold value, and only
// there (release.lua).
type release struct {
	keys  keySet
	value lockValue
}

func (r release) op() op       { return opRelease }
func (r release) grants() bool { return false }

func (r release) command(args []any) pipeline.Call {
	args = append(args, releaseSHA, r.keys.count())
	args = r.keys.appendTo(args)
	args = append(args, r.value.arg)
	return pipeline.Call{Cmd: "EVALSHA", Args: args, Script: releaseScript, Resend: true}
}

func (r release) vote(reply any) (int64, error) { return compared(reply) }

// extension resets the time to live of the lock's keys to ttl where every
// one still holds value (extend.lua).
type extension struct {
	keys  keySet
	value lockValue
	ttl   time.Duration
}

func (e extension) op() op       { return opExtend }
func (e extension) grants() bool { return true }

func (e extension) command(args []any) pipeline.Call {
	args = append(args, extendSHA, e.keys.count())
	args = e.keys.appendTo(args)
	args = append(args, e.value.arg, e.ttl.Milliseconds())
	return pipeline.Call{Cmd: "EVALSHA", Args: args, Script: extendScript, Resend: true}
}

func (e extension) vote(reply any) (int64, error) { return compared(reply) }

// compared reads a compare-and-act script's reply: 1 when it acted, 0 when
// the key is gone here or holds another value (ErrNotHeldHere).
func compared(reply any) (int64, error) {
	n, err := redis.Int(reply, nil)
	switch {
	case err != nil:
		return 0, err
	case n != 1:
		return 0, lockerr.ErrNotHeldHere
	}
	return 0, nil
}
