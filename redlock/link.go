package redlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
)

// errClosed fails the requests still queued when the Client is destroyed.
var errClosed = errors.New("client destroyed")

// link is the pipelined connection to one master. Any number of goroutines
// hand it requests; whichever finds no one writing writes every request
// queued so far in one batch (Send... Flush) and keeps doing so until the
// queue is empty, so a lone caller writes its own request at once and
// concurrent callers share write system calls. One reader goroutine per
// connection reads the replies, in order, and hands each to its request.
//
// All requests to a master go over one connection, so the master runs them
// in the order they were written: a release or extend sent after a SET
// cannot overtake it. The connection is borrowed from the master's pool
// (its dial options, AUTH and database included) and kept until it breaks.
// Dialing happens in a goroutine of its own, so a master that cannot be
// reached never blocks a caller: its requests wait in the queue and fail
// when the dial does.
type link struct {
	pool    *redis.Pool
	timeout time.Duration // node timeout: dialing, and each reply
	readers *sync.WaitGroup

	mu      sync.Mutex
	queue   []*call // waiting to be written
	spare   []*call // the previous batch's backing array, for reuse
	busy    bool    // someone is writing the queue or dialing
	wire    *wire   // nil when not connected
	closed  bool
	dialing context.CancelFunc // set while a dial runs
	dialer  dialer
}

// wire is one connection and the requests written on it that await their
// replies, in the order they were written.
type wire struct {
	conn redis.Conn
	// sending is held while a batch is written, so that the reader closes
	// the connection only between writes (redigo allows one writer and one
	// reader at a time, and Close alongside neither).
	sending sync.Mutex

	mu      sync.Mutex
	written []*call
	dead    error // set once the connection failed; nothing more is written
	// closing is set once the link closed and its last batch was written:
	// the reader reads the replies still due, then closes the connection.
	closing bool
	wake    chan struct{}
	plain   bool // the reader's: see receive
}

// call is one request and where its answer goes: a vote from node to votes,
// which has room for it, so that delivering never blocks.
type call struct {
	cmd   string
	args  []any
	argv  [6]any // args' backing array (the restart-protected or fenced acquisition allocates its own)
	node  int
	votes chan<- vote // nil: no one wants the answer
	// read turns a reply into the vote: nil for yes, with the number the
	// reply carried, if any (a fencing counter).
	read func(reply any) (int64, error)
	// src is the script's text when cmd is EVALSHA (args[0] its SHA1);
	// resend asks for the request to be sent again, whole, should the
	// master not know the script; link is the link it went over.
	src    string
	resend bool
	link   *link
}

// done delivers the reply or the failure as a vote. When the master did
// not know the script (NOSCRIPT: the script did not run), it has the
// scripts loaded again, and a request marked resend (a release or an
// extend: compare-and-act scripts, harmless however late they run) is sent
// again whole, with EVAL. An acquisition is not: run late, after the
// release that undoes a failed attempt, it would leave a key behind. It
// fails with the server's error, and its caller decides without that
// master's vote.
func (c *call) done(reply any, err error) {
	var val int64
	if err == nil {
		val, err = c.read(reply)
	} else if c.src != "" && c.link != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		l, again := c.link, c.resend
		if again {
			c.cmd, c.args[0], c.src = "EVAL", c.src, ""
		}
		// Not from the reader, which must not block on a write.
		l.readers.Add(1)
		go func() {
			defer l.readers.Done()
			for _, ld := range loads() {
				l.send(ld)
			}
			if again {
				l.send(c)
			}
		}()
		if again {
			return
		}
	}
	if c.votes != nil {
		c.votes <- vote{c.node, err, val}
	}
}

// loads are the SCRIPT LOADs that open every connection.
func loads() []*call {
	out := make([]*call, 0, 4)
	for _, src := range []string{releaseSrc, extendSrc, acquireSrc, fenceSrc} {
		c := &call{cmd: "SCRIPT", read: readAny}
		c.argv[0], c.argv[1] = "LOAD", src
		c.args = c.argv[:2]
		out = append(out, c)
	}
	return out
}

func newLink(pool *redis.Pool, timeout time.Duration, readers *sync.WaitGroup) *link {
	return &link{pool: pool, timeout: timeout, readers: readers}
}

// send queues c and, if no one else is, writes the queue. c.done is called
// exactly once, from some goroutine, with the reply or the error.
func (l *link) send(c *call) {
	if l.queue1(c) {
		l.write()
	}
}

// queue1 queues c and reports whether the caller is now the link's writer,
// and must call write.
func (l *link) queue1(c *call) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.done(nil, fmt.Errorf("%w: %w", core.ErrUnreachable, errClosed))
		return false
	}
	l.queue = append(l.queue, c)
	if l.busy {
		l.mu.Unlock()
		return false
	}
	l.busy = true
	l.mu.Unlock()
	return true
}

// write writes the queue; only the writer that queue1 named calls it.
func (l *link) write() {
	l.mu.Lock()
	l.flush()
}

// flush writes batches until the queue is empty, or starts a dial when
// there is no connection. Called with l.mu held and l.busy set; returns
// with l.mu released and l.busy cleared unless a dial took over. What was
// queued before the link closed is still written; the last writer then
// tells the reader to finish.
func (l *link) flush() {
	for len(l.queue) > 0 {
		w := l.wire
		if w == nil {
			if l.closed {
				batch := l.take()
				l.busy = false
				l.mu.Unlock()
				fail(batch, fmt.Errorf("%w: %w", core.ErrUnreachable, errClosed))
				return
			}
			l.dial()
			return
		}
		batch := l.take()
		l.mu.Unlock()
		err := w.write(batch)
		clear(batch)
		l.mu.Lock()
		l.spare = batch[:0]
		if err != nil && l.wire == w {
			l.wire = nil
		}
	}
	l.busy = false
	w, closing := l.wire, l.closed
	if closing {
		l.wire = nil
	}
	l.mu.Unlock()
	if closing && w != nil {
		w.finish()
	}
}

func (l *link) take() []*call {
	batch := l.queue
	l.queue = l.spare
	l.spare = nil
	return batch
}

// dial connects in the background and then writes what queued meanwhile.
// Called with l.mu held and l.busy set; releases l.mu.
func (l *link) dial() {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	l.dialing = cancel
	l.readers.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.readers.Done()
		conn, err := l.dialer.get(ctx, func() (redis.Conn, error) { return l.pool.GetContext(ctx) })
		cancel()
		l.mu.Lock()
		l.dialing = nil
		if err != nil {
			batch := l.take()
			l.busy = false
			l.mu.Unlock()
			fail(batch, unreachable(err, l.timeout))
			return
		}
		w := &wire{conn: conn, wake: make(chan struct{}, 1)}
		l.wire = w
		l.queue = append(loads(), l.queue...)
		l.readers.Add(1)
		go l.read(w)
		l.flush()
	}()
}

// write hands batch to the reader and writes it. An error means the
// connection is broken; the reader then fails every request written on it.
func (w *wire) write(batch []*call) error {
	w.mu.Lock()
	if w.dead != nil {
		err := w.dead
		w.mu.Unlock()
		fail(batch, err)
		return err
	}
	w.written = append(w.written, batch...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	w.sending.Lock()
	defer w.sending.Unlock()
	for _, c := range batch {
		if err := w.conn.Send(c.cmd, c.args...); err != nil {
			return err
		}
	}
	return w.conn.Flush()
}

// receive reads the next reply, waiting at most timeout for it. A
// connection that cannot take a timeout per read (a wrapper that hides
// redigo's) is read with its own read timeout from then on.
func (w *wire) receive(timeout time.Duration) (any, error) {
	if !w.plain {
		reply, err := redis.ReceiveWithTimeout(w.conn, timeout)
		if err == nil || err.Error() != "redis: connection does not support ConnWithTimeout" {
			return reply, err
		}
		w.plain = true
	}
	return w.conn.Receive()
}

// kill marks the connection failed, with err unless it already was, and
// returns the failure.
func (w *wire) kill(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead == nil {
		w.dead = err
	}
	return w.dead
}

// read matches replies to requests, in order, until the connection fails
// or the link closes; then it fails every request written on it and closes
// the connection.
func (l *link) read(w *wire) {
	defer l.readers.Done()
	var spare []*call
	for {
		w.mu.Lock()
		for len(w.written) == 0 && w.dead == nil && !w.closing {
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		buf := w.written
		w.written = spare
		dead := w.dead
		if dead == nil && w.closing && len(buf) == 0 {
			// Every reply due has been read: nothing more is written.
			w.dead = fmt.Errorf("%w: %w", core.ErrUnreachable, errClosed)
			dead = w.dead
		}
		w.mu.Unlock()
		batch := buf
		for dead == nil && len(batch) > 0 {
			reply, err := w.receive(l.timeout)
			var server redis.Error
			if err != nil && !errors.As(err, &server) {
				dead = w.kill(unreachable(err, l.timeout))
				break
			}
			c := batch[0]
			batch = batch[1:]
			c.done(reply, err)
		}
		if dead != nil {
			l.mu.Lock()
			if l.wire == w {
				l.wire = nil
			}
			l.mu.Unlock()
			// Nothing is written once dead is set, so this is all of it.
			w.mu.Lock()
			batch = append(batch, w.written...)
			w.written = nil
			w.mu.Unlock()
			fail(batch, dead)
			w.sending.Lock()
			w.close(l.timeout)
			w.sending.Unlock()
			return
		}
		clear(buf)
		spare = buf[:0]
	}
}

// close closes the connection. A pooled connection that is closed reads
// every reply still due before it goes back to the pool, with the read
// timeout it was dialed with, which may be none: a master that stopped
// answering would then hold Destroy forever. So those replies are read
// here first, all within timeout; a read that times out breaks the
// connection, and the pool then discards it. Nothing is due once the
// reader has read everything written, so this costs nothing then.
func (w *wire) close(timeout time.Duration) {
	if w.conn.Err() == nil && !w.plain {
		redis.DoWithTimeout(w.conn, timeout, "")
	}
	w.conn.Close()
}

// finish has the reader read the replies to what was written, then close
// the connection and exit. It is called once the link is closed and its
// last batch written, so nothing is written after it.
func (w *wire) finish() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close refuses new requests and stops a dial (what was queued behind it
// fails). What is queued for a connection is still written, by the writer
// at work or here; the reader then reads the replies to what was written
// (each bounded by the node timeout), closes the connection and exits.
// Destroy waits for that on l.readers.
func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	if l.dialing != nil {
		l.dialing()
	}
	if l.busy {
		l.mu.Unlock() // the writer or the dial finishes up
		return
	}
	l.busy = true
	l.flush()
}

// dialer runs the dials of one link or watcher (one at a time) so that a
// dial that ignores its context is not waited for past that context: a
// pool that dials with Dial rather than DialContext, or whose TestOnBorrow
// does I/O, may never return from a dial to a master that stopped answering
// (an AUTH or SELECT read without a read timeout). Such a dial is left to
// finish in the background, and the next one starts only once it has
// returned, so a hung master costs one goroutine and one socket, not one
// per node timeout. A connection it returns late is closed.
type dialer struct {
	mu        sync.Mutex
	abandoned chan struct{} // closed when the abandoned dial returns; nil when none runs
}

type dialed struct {
	conn redis.Conn
	err  error
}

// get returns what dial returns, or ctx's error should ctx end first, or
// should an abandoned dial still run when it does.
func (d *dialer) get(ctx context.Context, dial func() (redis.Conn, error)) (redis.Conn, error) {
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

func fail(batch []*call, err error) {
	for _, c := range batch {
		c.done(nil, err)
	}
}

// unreachable describes a failure to reach a master: no answer within the
// node timeout (not reported as a context deadline, which would read as the
// caller's own), or a broken connection.
func unreachable(err error, timeout time.Duration) error {
	if errors.Is(err, core.ErrUnreachable) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: no answer within %v", core.ErrUnreachable, timeout)
	}
	return fmt.Errorf("%w: %w", core.ErrUnreachable, err)
}
