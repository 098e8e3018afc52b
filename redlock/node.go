package redlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
)

// node is one independent master.
type node struct {
	pool    *redis.Pool
	name    string
	timeout time.Duration
	// plainDel breaks release on purpose (core.Variant), for the safety
	// suite only.
	plainDel bool
}

// do runs f on a pooled connection, the whole of it (getting and dialing the
// connection included) bounded by the node timeout, so a hung or cut-off
// master costs at most that long.
func (n *node) do(ctx context.Context, f func(context.Context, redis.Conn) (any, error)) (any, error) {
	cctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	conn, err := n.pool.GetContext(cctx)
	if err != nil {
		return nil, n.classify(ctx, err)
	}
	reply, err := f(cctx, conn)
	conn.Close()
	if err != nil {
		return nil, n.classify(ctx, err)
	}
	return reply, nil
}

// classify tells the kinds of node failure apart: the server's error reply
// (kept as is), the caller's context ending (CtxErr), and anything else (no
// answer within the node timeout, a broken connection), which wraps
// ErrUnreachable. A node timeout is not reported as a context deadline:
// that would read as the caller's own deadline having passed.
func (n *node) classify(ctx context.Context, err error) error {
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		return err
	case ctx.Err() != nil:
		return core.CtxErr(ctx)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: no answer within %v", core.ErrUnreachable, n.timeout)
	default:
		return fmt.Errorf("%w: %w", core.ErrUnreachable, err)
	}
}

// acquire sets key to value for ttl unless the key exists. nil means set.
// With a restart delay, the master refuses to vote for a while after it
// lost its data (see acquire.lua).
func (n *node) acquire(ctx context.Context, key, value string, ttl, restartDelay time.Duration) error {
	if restartDelay > 0 {
		reply, err := n.do(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
			return redis.Int64(acquireScript.DoContext(ctx, c, key, MarkerKey, value, ttl.Milliseconds(), restartDelay.Milliseconds()))
		})
		switch {
		case err != nil:
			return err
		case reply.(int64) == 0:
			return core.ErrTaken
		case reply.(int64) < 0:
			wait := time.Duration(-reply.(int64)) * time.Millisecond
			return fmt.Errorf("%w: restarted or lost its data; its vote counts again in %v", core.ErrRejoining, wait)
		}
		return nil
	}
	reply, err := n.do(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
		return redis.DoContext(c, ctx, "SET", key, value, "NX", "PX", ttl.Milliseconds())
	})
	switch {
	case err != nil:
		return err
	case reply == nil:
		return core.ErrTaken
	}
	return nil
}

// release deletes key where it holds value. nil means deleted.
func (n *node) release(ctx context.Context, key, value string) error {
	if n.plainDel {
		_, err := n.do(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
			return redis.DoContext(c, ctx, "DEL", key)
		})
		return err
	}
	// EVAL, not EVALSHA: on a master that has not cached the script (after
	// a restart) and whose replies are slow, EVALSHA's NOSCRIPT answer can
	// come back after the node timeout, and the EVAL that should follow
	// would never be sent, leaving the key behind. A release must not depend
	// on a second round trip; sending the script's text costs a few hundred
	// bytes.
	return n.ours(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
		return redis.DoContext(c, ctx, "EVAL", releaseSrc, 1, key, value)
	})
}

// extend resets key's ttl where it holds value. nil means extended.
func (n *node) extend(ctx context.Context, key, value string, ttl time.Duration) error {
	return n.ours(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
		return extendScript.DoContext(ctx, c, key, value, strconv.FormatInt(ttl.Milliseconds(), 10))
	})
}

// ours runs a compare-and-act script, whose reply is 1 when it acted and 0
// when the key is gone here or holds another value (NotHeldHere).
func (n *node) ours(ctx context.Context, run func(context.Context, redis.Conn) (any, error)) error {
	reply, err := n.do(ctx, func(ctx context.Context, c redis.Conn) (any, error) {
		return redis.Int(run(ctx, c))
	})
	switch {
	case err != nil:
		return err
	case reply != 1:
		return core.NotHeldHere
	}
	return nil
}
