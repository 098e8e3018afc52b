package pipeline

import (
	"context"
	"sync"

	"github.com/gomodule/redigo/redis"
)

// Dialer runs the dials of one connection (one at a time) so that a dial
// that ignores its context is not waited for past that context: a pool
// that dials with Dial rather than DialContext, or whose TestOnBorrow does
// I/O, may never return from a dial to a server that stopped answering (an
// AUTH or SELECT read without a read timeout). Such a dial is left to
// finish in the background, and the next one starts only once it has
// returned, so a hung server costs one goroutine and one socket, not one
// per timeout. A connection it returns late is closed. The zero Dialer is
// ready to use.
type Dialer struct {
	mu        sync.Mutex
	abandoned chan struct{} // closed when the abandoned dial returns; nil when none runs
}

type dialed struct {
	conn redis.Conn
	err  error
}

// Get returns what dial returns, or ctx's error should ctx end first, or
// should an abandoned dial still run when it does.
func (d *Dialer) Get(ctx context.Context, dial func() (redis.Conn, error)) (redis.Conn, error) {
	d.mu.Lock()
	prev := d.abandoned
	d.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ch := make(chan dialed, 1)
	go func() {
		conn, err := dial()
		ch <- dialed{conn, err}
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-ctx.Done():
		done := make(chan struct{})
		d.mu.Lock()
		d.abandoned = done
		d.mu.Unlock()
		go func() {
			if r := <-ch; r.err == nil {
				r.conn.Close()
			}
			d.mu.Lock()
			if d.abandoned == done {
				d.abandoned = nil
			}
			d.mu.Unlock()
			close(done)
		}()
		return nil, ctx.Err()
	}
}
