package pipeline

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Conn is the pipelined connection to one server. Any number of goroutines
// hand it calls; whichever finds no one writing writes every call queued so
// far in one batch and keeps doing so until the queue is empty, so a lone
// caller writes its own call at once and concurrent callers share write
// system calls. One reader goroutine reads the replies, in order, and hands
// each to its call.
//
// The connection is borrowed from the server's pool (its dial options,
// AUTH and database included) and kept until it breaks; the next call then
// dials again. Dialing happens in a goroutine of its own, so a server that
// cannot be reached never blocks a caller: the calls wait in the queue and
// fail when the dial does. Every new connection first sends the opening
// calls (see New), ahead of anything queued.
type Conn struct {
	pool       *redis.Pool
	timeout    time.Duration // dialing, and each reply (with replyGrace)
	opening    func() []*Call
	background *sync.WaitGroup // the reader, dials and script reloads

	mu      sync.Mutex
	queue   []*Call // waiting to be written
	spare   []*Call // the previous batch's backing array, for reuse
	busy    bool    // someone is writing the queue or dialing
	wire    *wire   // nil when not connected
	closed  bool
	dialing context.CancelFunc // set while a dial runs
	dialer  Dialer
	retire  bool // give the connection up before the next batch (Retire)
}

// New returns the Conn to the server that pool dials. timeout bounds the
// dial, and the wait for each reply with a grace of a quarter more (see
// replyGrace): callers give up on a reply at timeout. opening, when not
// nil, returns the calls that every new connection sends first (loading
// scripts, say). background counts the goroutines the Conn starts; Close
// lets them end, and the owner waits for them there.
func New(pool *redis.Pool, timeout time.Duration, opening func() []*Call, background *sync.WaitGroup) *Conn {
	return &Conn{pool: pool, timeout: timeout, opening: opening, background: background}
}

// wire is one connection and the calls written on it that await their
// replies, in the order they were written.
type wire struct {
	conn redis.Conn
	// sending is held while a batch is written, so that the reader closes
	// the connection only between writes (redigo allows one writer and one
	// reader at a time, and Close alongside neither).
	sending sync.Mutex

	mu      sync.Mutex
	written []*Call
	dead    error // set once the connection failed; nothing more is written
	// closing is set once the Conn closed and its last batch was written:
	// the reader reads the replies still due, then closes the connection.
	closing bool
	wake    chan struct{}
	plain   bool // the reader's: see receive
}

// Send queues c and, if no one else is, writes the queue. c gets its reply
// or failure exactly once, from some goroutine.
func (l *Conn) Send(c *Call) {
	if l.Enqueue(c) {
		l.Write()
	}
}

// Enqueue queues calls, in order and together (they go in one batch, on
// one connection), and reports whether the caller is now the Conn's
// writer, and must call Write. A caller that sends to several servers
// queues on all of them first and writes after, so that others' calls
// queued meanwhile go in the same writes.
func (l *Conn) Enqueue(calls ...*Call) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		for _, c := range calls {
			c.done(nil, &Error{Err: ErrClosed})
		}
		return false
	}
	l.queue = append(l.queue, calls...)
	if l.busy {
		l.mu.Unlock()
		return false
	}
	l.busy = true
	l.mu.Unlock()
	return true
}

// Write writes the queue; only the writer that Enqueue named calls it.
func (l *Conn) Write() {
	l.mu.Lock()
	l.writeQueued()
}

// Retire gives the current connection up: the calls written on it still
// get their replies, and the next batch goes on a new connection, which
// sends the opening calls again. For a server that is no longer what the
// connection's opening found (a master that became a replica, say).
func (l *Conn) Retire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy {
		l.retire = true // the writer at work gives it up before its next batch
		return
	}
	l.detach()
}

// detach gives the connection up, if there is one; l.mu is held and no
// one is writing.
func (l *Conn) detach() {
	l.retire = false
	if w := l.wire; w != nil {
		l.wire = nil
		w.finish()
	}
}

// writeQueued writes batches until the queue is empty, or starts a dial
// when there is no connection. Called with l.mu held and l.busy set;
// returns with l.mu released and l.busy cleared unless a dial took over.
// What was queued before the Conn closed is still written; the last writer
// then tells the reader to finish.
func (l *Conn) writeQueued() {
	for len(l.queue) > 0 {
		if l.retire {
			l.detach()
		}
		w := l.wire
		if w == nil {
			if l.closed {
				batch := l.take()
				l.busy = false
				l.mu.Unlock()
				fail(batch, &Error{Err: ErrClosed})
				return
			}
			l.dial()
			return
		}
		batch := l.take()
		l.mu.Unlock()
		err := w.write(batch)
		l.mu.Lock()
		if err != nil && l.wire == w {
			l.wire = nil
		}
		if err == errUnwritten {
			// The connection died before any of the batch was written
			// (its reader gave up on an earlier reply): the batch goes
			// first on the next connection, as if it had waited for it.
			l.queue = append(batch, l.queue...)
			continue
		}
		clear(batch)
		l.spare = batch[:0]
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

func (l *Conn) take() []*Call {
	batch := l.queue
	l.queue = l.spare
	l.spare = nil
	return batch
}

// dial connects in the background and then writes what queued meanwhile.
// Called with l.mu held and l.busy set; releases l.mu.
func (l *Conn) dial() {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	l.dialing = cancel
	l.background.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.background.Done()
		conn, err := l.dialer.Get(ctx, func() (redis.Conn, error) { return l.pool.GetContext(ctx) })
		cancel()
		l.mu.Lock()
		l.dialing = nil
		if err != nil {
			batch := l.take()
			l.busy = false
			l.mu.Unlock()
			fail(batch, failure(err, l.timeout, true))
			return
		}
		w := &wire{conn: conn, wake: make(chan struct{}, 1)}
		l.wire = w
		if l.opening != nil {
			l.queue = append(l.opening(), l.queue...)
		}
		l.background.Add(1)
		go l.read(w)
		l.writeQueued()
	}()
}

// replyGrace is how much longer than its timeout the reader waits for a
// reply before it gives the connection up: a caller that gave up on that
// reply after the timeout, and then writes on the connection (a delete
// that releases what its unanswered call may have set), finds it still
// open, so that its write goes out behind the unanswered call rather than
// racing the connection's close.
func replyGrace(timeout time.Duration) time.Duration { return timeout / 4 }

// errUnwritten is write's report that the batch did not go out, because
// the connection had failed before it: the batch is still the caller's, to
// send on the next connection.
var errUnwritten = errors.New("pipeline: connection failed before the write")

// write hands batch to the reader and writes it. An error means the
// connection is broken. It is errUnwritten when it was before anything of
// the batch was handed over: the reader had marked it failed, or redigo
// had (it closes the socket as soon as a read fails, which is the reader's
// timeout on an earlier reply, a moment before the reader can mark it).
// Otherwise the reader fails every call written on it: a write that fails
// part way may have put some calls on the wire, and they are not sent
// again.
func (w *wire) write(batch []*Call) error {
	w.mu.Lock()
	if w.dead != nil || w.conn.Err() != nil {
		w.mu.Unlock()
		return errUnwritten
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
		if err := w.conn.Send(c.Cmd, c.Args...); err != nil {
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

// read matches replies to calls, in order, until the connection fails or
// the Conn closes; then it fails every call written on it and closes the
// connection.
func (l *Conn) read(w *wire) {
	defer l.background.Done()
	var spare []*Call
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
			w.dead = &Error{Err: ErrClosed}
			dead = w.dead
		}
		w.mu.Unlock()
		batch := buf
		for dead == nil && len(batch) > 0 {
			reply, err := w.receive(l.timeout + replyGrace(l.timeout))
			var server redis.Error
			if err != nil && !errors.As(err, &server) {
				dead = w.kill(failure(err, l.timeout, false))
				break
			}
			c := batch[0]
			batch = batch[1:]
			if err != nil && c.Script != nil && isNoScript(err) {
				l.recover(c)
				if c.Resend {
					continue // the call gets the reply to its resending
				}
			}
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
// timeout it was dialed with, which may be none: a server that stopped
// answering would then hold the owner's shutdown forever. So those replies
// are read here first, all within timeout; a read that times out breaks
// the connection, and the pool then discards it. Nothing is due once the
// reader has read everything written, so this costs nothing then.
func (w *wire) close(timeout time.Duration) {
	if w.conn.Err() == nil && !w.plain {
		redis.DoWithTimeout(w.conn, timeout, "")
	}
	w.conn.Close()
}

// finish has the reader read the replies to what was written, then close
// the connection and exit. It is called once the Conn is closed and its
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

// Close refuses new calls and stops a dial (what was queued behind it
// fails). What is queued for a connection is still written, by the writer
// at work or here; the reader then reads the replies to what was written
// (each bounded by the timeout), closes the connection and exits. The
// owner waits for that on the background WaitGroup given to New.
func (l *Conn) Close() {
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
	l.writeQueued()
}

// failure describes a failure to reach the server: no answer within the
// timeout (not reported as a context deadline, which would read as the
// caller's own), or a broken connection.
func failure(err error, timeout time.Duration, dial bool) *Error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = NoAnswer{timeout}
	}
	return &Error{Dial: dial, Err: err}
}
