package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/leakcheck"
	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/internal/redistest"
)

// server is one redis-server process for the package's tests, started on
// first use.
var server struct {
	once sync.Once
	s    *redistest.Server
	err  error
}

func TestMain(m *testing.M) {
	os.Exit(leakcheck.Main(m, func() error {
		if server.s == nil {
			return nil
		}
		return server.s.Close()
	}))
}

func addr(t *testing.T) string {
	t.Helper()
	server.once.Do(func() { server.s, server.err = redistest.RunServer(context.Background()) })
	if server.err != nil {
		t.Fatalf("these tests need a real Redis server: %v", server.err)
	}
	return server.s.Addr()
}

// eventually reports whether cond held within waitFor, checking it at
// once and then every tick.
func eventually(waitFor, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(waitFor)
	for {
		if cond() {
			return true
		}
		if time.Now().Add(tick).After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
}

// reply is one call's outcome.
type reply struct {
	value any
	err   error
}

// replies collects the replies of calls, by index.
type replies struct {
	mu  sync.Mutex
	got map[int]reply
	ch  chan int
}

func newReplies(n int) *replies { return &replies{got: map[int]reply{}, ch: make(chan int, n)} }

func (r *replies) Receive(i int, value any, err error) {
	r.mu.Lock()
	r.got[i] = reply{value, err}
	r.mu.Unlock()
	r.ch <- i
}

// wait waits for n replies, at most limit in all.
func (r *replies) wait(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for range n {
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("replies still missing after %v", limit)
		}
	}
}

func (r *replies) of(i int) reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[i]
}

// flushCounter counts the Flush calls (write system calls) made on the
// connections it dials.
type flushCounter struct {
	redis.Conn
	flushes *atomic.Int64
}

func (c flushCounter) Flush() error {
	c.flushes.Add(1)
	return c.Conn.Flush()
}

// TestPipelineMatchesReplies: many callers at once share one connection,
// in fewer writes than requests, and every caller gets its own reply.
func TestPipelineMatchesReplies(t *testing.T) {
	a := addr(t)
	var flushes atomic.Int64
	pool := &redis.Pool{Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", a, redis.DialReadTimeout(time.Second), redis.DialWriteTimeout(time.Second))
		if err != nil {
			return nil, err
		}
		return flushCounter{c, &flushes}, nil
	}}
	defer pool.Close()
	const callers = 2000
	for range 3 {
		wrong, err := echoThrough(pool, 5*time.Second, callers, func() { flushes.Store(0) })
		if err != nil {
			t.Fatalf("ECHO from %d callers at once: err = %v, want nil", callers, err)
		}
		if len(wrong) > 0 {
			t.Fatalf("ECHO from %d callers at once: %d replies handed to the wrong caller: %v", callers, len(wrong), wrong)
		}
		t.Logf("%d requests in %d writes", callers, flushes.Load())
		if flushes.Load() < callers*9/10 {
			return
		}
	}
	t.Errorf("%d concurrent requests took %d writes: they are not being batched", callers, flushes.Load())
}

// echoThrough connects a Conn to pool's server, calls connected, then
// sends ECHO i, for i in [0, callers), from callers goroutines at once
// through it, and returns the replies that were not the caller's own.
func echoThrough(pool *redis.Pool, timeout time.Duration, callers int, connected func()) (wrong []string, err error) {
	var background sync.WaitGroup
	conn := pipeline.New(pool, timeout, nil, &background)
	defer func() { conn.Close(); background.Wait() }()
	first := newReplies(1)
	conn.Send(&pipeline.Call{Cmd: "PING", To: first})
	<-first.ch
	if err := first.of(0).err; err != nil {
		return nil, err
	}
	connected()
	all := newReplies(callers)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			conn.Send(&pipeline.Call{Cmd: "ECHO", Args: []any{fmt.Sprint(i)}, To: all, Index: i})
		})
	}
	close(start)
	wg.Wait()
	for range callers {
		<-all.ch
	}
	for i := range callers {
		r := all.of(i)
		s, rerr := redis.String(r.value, r.err)
		switch {
		case rerr != nil:
			err = rerr
		case s != fmt.Sprint(i):
			wrong = append(wrong, fmt.Sprintf("%d got %s", i, s))
		}
	}
	return wrong, err
}

// closeAwaitingReplies connects a Conn to pool's server and sends it a
// BLPOP that the server answers (nil) after 300 ms. Once the reader waits
// for that reply, it sends a second BLPOP, which waits second (a BLPOP
// timeout: "0" is never, as a server that stopped answering would not
// answer), and closes the Conn. It waits at most limit for the Conn's
// goroutines to exit, and returns the two calls' failures and whether
// they exited.
func closeAwaitingReplies(t *testing.T, pool *redis.Pool, timeout, limit time.Duration, key, second string) (first, last error, exited bool) {
	var background sync.WaitGroup
	conn := pipeline.New(pool, timeout, nil, &background)
	ping := newReplies(1)
	conn.Send(&pipeline.Call{Cmd: "PING", To: ping})
	<-ping.ch
	if err := ping.of(0).err; err != nil {
		conn.Close()
		return err, err, false
	}
	r := newReplies(2)
	conn.Send(&pipeline.Call{Cmd: "BLPOP", Args: []any{key + ":first", "0.3"}, To: r, Index: 0})
	time.Sleep(100 * time.Millisecond) // the reader now waits for that reply
	conn.Send(&pipeline.Call{Cmd: "BLPOP", Args: []any{key + ":second", second}, To: r, Index: 1})
	conn.Close()
	done := make(chan struct{})
	go func() { background.Wait(); close(done) }()
	select {
	case <-done:
		exited = true
	case <-time.After(limit):
	}
	r.wait(t, 2, limit)
	return r.of(0).err, r.of(1).err, exited
}

// TestCloseReadsRepliesDue: closing a Conn (as Destroy does) lets the
// calls it has written get their replies, one written after the reader
// began waiting included, rather than failing them.
func TestCloseReadsRepliesDue(t *testing.T) {
	a := addr(t)
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", a) }}
	defer pool.Close()
	first, second, exited := closeAwaitingReplies(t, pool, time.Second, 10*time.Second, "lock:test:"+t.Name(), "0.3")
	if !exited {
		t.Fatalf("the Conn's reader still runs 10s after the Conn closed")
	}
	if first != nil {
		t.Errorf("the BLPOP answered after the reader began waiting: err = %v, want nil", first)
	}
	if second != nil {
		t.Errorf("the BLPOP written just before Close: err = %v, want nil: a call written before the Conn closed got no reply", second)
	}
}

// TestCloseBoundedByNodeTimeout: closing a Conn while a call to its server
// is still unanswered returns within about the timeout (1s), even over a
// pool dialed without a read timeout, whose connections would otherwise
// wait for that reply forever when they go back to the pool.
func TestCloseBoundedByNodeTimeout(t *testing.T) {
	a := addr(t)
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", a) }}
	defer pool.Close()
	first, second, exited := closeAwaitingReplies(t, pool, time.Second, 3*time.Second, "lock:test:"+t.Name(), "0")
	if !exited {
		t.Fatalf("the Conn's reader still waits for a reply 3s after the Conn closed, with a timeout of 1s")
	}
	if first != nil {
		t.Errorf("the answered call: err = %v, want nil", first)
	}
	var failed *pipeline.Error
	if !errors.As(second, &failed) {
		t.Errorf("the unanswered call: err = %v, want a *pipeline.Error", second)
	}
}

// TestNoScriptRecovered: a server that forgot its scripts (SCRIPT FLUSH)
// gets them loaded again, and a call that asks to be resent is sent again
// with EVAL and gets the script's reply; one that does not gets NOSCRIPT.
func TestNoScriptRecovered(t *testing.T) {
	a := addr(t)
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", a) }}
	defer pool.Close()
	s := pipeline.NewScript("-- a comment\n  return ARGV[1]\n")
	if want := "return ARGV[1]\n"; s.Src != want {
		t.Fatalf("NewScript(a comment, an indented line).Src = %q, want %q: comments and indentation are stripped", s.Src, want)
	}
	var background sync.WaitGroup
	conn := pipeline.New(pool, time.Second, func() []*pipeline.Call { return pipeline.Load(s) }, &background)
	defer func() { conn.Close(); background.Wait() }()
	r := newReplies(3)
	conn.Send(&pipeline.Call{Cmd: "EVALSHA", Args: []any{s.SHA, 0, "loaded"}, Script: s, To: r, Index: 0})
	r.wait(t, 1, 5*time.Second)
	got, err := redis.String(r.of(0).value, r.of(0).err)
	if err != nil {
		t.Fatalf("EVALSHA of the loaded script: err = %v, want nil", err)
	}
	if got != "loaded" {
		t.Fatalf("EVALSHA of the loaded script = %q, want %q", got, "loaded")
	}

	conn.Send(&pipeline.Call{Cmd: "SCRIPT", Args: []any{"FLUSH"}})
	conn.Send(&pipeline.Call{Cmd: "EVALSHA", Args: []any{s.SHA, 0, "resent"}, Script: s, Resend: true, To: r, Index: 1})
	r.wait(t, 1, 5*time.Second)
	got, err = redis.String(r.of(1).value, r.of(1).err)
	if err != nil {
		t.Fatalf("EVALSHA marked Resend after SCRIPT FLUSH: err = %v, want nil: a call marked Resend after NOSCRIPT", err)
	}
	if got != "resent" {
		t.Errorf("EVALSHA marked Resend after SCRIPT FLUSH = %q, want %q", got, "resent")
	}

	conn.Send(&pipeline.Call{Cmd: "SCRIPT", Args: []any{"FLUSH"}})
	conn.Send(&pipeline.Call{Cmd: "EVALSHA", Args: []any{s.SHA, 0, "not resent"}, Script: s, To: r, Index: 2})
	r.wait(t, 1, 5*time.Second)
	if err := r.of(2).err; err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		t.Errorf("EVALSHA not marked Resend after SCRIPT FLUSH: err = %v, want one containing NOSCRIPT: a call not marked Resend gets the server's answer", err)
	}
	// The opening calls loaded the script again meanwhile.
	admin, err := redis.Dial("tcp", a)
	if err != nil {
		t.Fatalf("Dial(%s) err = %v, want nil", a, err)
	}
	defer admin.Close()
	if !eventually(2*time.Second, 10*time.Millisecond, func() bool {
		have, err := redis.Ints(admin.Do("SCRIPT", "EXISTS", s.SHA))
		return err == nil && len(have) == 1 && have[0] == 1
	}) {
		t.Errorf("SCRIPT EXISTS %s: not 1 within 2s, want the script loaded again after NOSCRIPT", s.SHA)
	}
}

// TestUnwrittenGoesOnNextConnection: a call whose writer finds the
// connection failed already (its reader gave up on an earlier reply and has
// not dropped it yet) was never written, so it goes on a new connection
// and gets the server's reply, not the old connection's failure. A delete
// that releases a lock must reach the master even when the connection of
// the SET before it timed out just then.
func TestUnwrittenGoesOnNextConnection(t *testing.T) {
	a := addr(t)
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", a) }}
	defer pool.Close()
	var background sync.WaitGroup
	conn := pipeline.New(pool, time.Second, nil, &background)
	defer func() {
		conn.Close()
		background.Wait()
	}()
	got := newReplies(2)
	conn.Send(&pipeline.Call{Cmd: "PING", To: got, Index: 0})
	got.wait(t, 1, 5*time.Second)
	if r := got.of(0); r.err != nil || r.value != "PONG" {
		t.Fatalf("PING on a new connection: %v, %v; want PONG, nil", r.value, r.err)
	}
	gone := &pipeline.Error{Err: errors.New("no answer (simulated)")}
	wake, ok := pipeline.KillUnseen(conn, gone)
	if !ok {
		t.Fatal("the Conn holds no connection after a reply came on it")
	}
	defer wake()
	conn.Send(&pipeline.Call{Cmd: "ECHO", Args: []any{"after"}, To: got, Index: 1})
	got.wait(t, 1, 5*time.Second)
	r := got.of(1)
	if r.err != nil {
		t.Fatalf("a call sent after its connection failed, before it was dropped: err = %v, want the server's reply: it was never written", r.err)
	}
	if v, _ := redis.String(r.value, nil); v != "after" {
		t.Fatalf("ECHO after: reply %v, want \"after\"", r.value)
	}
}

// gatedConn is a connection whose writes wait, from the third on, until a
// read has failed on it (redigo closes the socket then): the moment
// between redigo's close and the reader's marking the connection failed.
// A write asks Err first, so that is where it waits.
type gatedConn struct {
	redis.Conn
	errs       atomic.Int64 // Err calls
	reads      atomic.Int64 // reads begun
	readFailed chan struct{}
	once       sync.Once
}

func (c *gatedConn) Err() error {
	if c.errs.Add(1) == 3 {
		<-c.readFailed
	}
	return c.Conn.Err()
}

func (c *gatedConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	c.reads.Add(1)
	reply, err := redis.ReceiveWithTimeout(c.Conn, timeout)
	if err != nil {
		c.once.Do(func() { close(c.readFailed) })
	}
	return reply, err
}

func (c *gatedConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	return redis.DoWithTimeout(c.Conn, timeout, cmd, args...)
}

// TestClosedUnderWriteGoesOnNextConnection: a call written once the
// reader's timeout on an earlier reply (a BLPOP that never answers) has
// closed the socket, but before the reader marked the connection failed,
// goes on a new connection and gets the server's reply, not the old
// connection's failure; the call that timed out fails as unanswered. This is how a delete that releases a
// failed attempt, written as the node timeout of a hung master ends, still
// reaches the master.
func TestClosedUnderWriteGoesOnNextConnection(t *testing.T) {
	a := addr(t)
	var dials atomic.Int64
	gated := &gatedConn{readFailed: make(chan struct{})}
	pool := &redis.Pool{Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", a)
		if err != nil {
			return nil, err
		}
		if dials.Add(1) > 1 {
			return c, nil
		}
		gated.Conn = c
		return gated, nil
	}}
	defer pool.Close()
	var background sync.WaitGroup
	conn := pipeline.New(pool, 300*time.Millisecond, nil, &background)
	defer func() {
		conn.Close()
		background.Wait()
	}()
	got := newReplies(3)
	// Write 1: the PING; write 2: the BLPOP, on its own; write 3: the
	// ECHO, which meets the socket closed.
	conn.Send(&pipeline.Call{Cmd: "PING", To: got, Index: 0})
	got.wait(t, 1, 5*time.Second)
	conn.Send(&pipeline.Call{Cmd: "BLPOP", Args: []any{"lock:test:" + t.Name(), 0}, To: got, Index: 1})
	// The reader waits for the BLPOP's reply (its second read) before the
	// ECHO comes, as it waits for a hung master's.
	if !eventually(5*time.Second, time.Millisecond, func() bool { return gated.reads.Load() >= 2 }) {
		t.Fatal("the reader did not wait for the BLPOP's reply within 5s")
	}
	conn.Send(&pipeline.Call{Cmd: "ECHO", Args: []any{"after"}, To: got, Index: 2})
	got.wait(t, 2, 5*time.Second)
	var failed *pipeline.Error
	if r := got.of(1); !errors.As(r.err, &failed) {
		t.Errorf("the BLPOP that never answers: err = %v, want a *pipeline.Error", r.err)
	}
	r := got.of(2)
	if r.err != nil {
		t.Fatalf("a call whose write met the socket closed by the reader's timeout: err = %v, want the server's reply from a new connection: it never went out", r.err)
	}
	if v, _ := redis.String(r.value, nil); v != "after" {
		t.Fatalf("ECHO after: reply %v, want \"after\"", r.value)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2: the ECHO goes on a second connection", n)
	}
}

// busyScript keeps the server busy for ARGV[1] microseconds: every
// client's commands wait until it ends, and are run then.
const busyScript = `local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start > tonumber(ARGV[1]) then return 1 end
end`

// TestWriteAtTimeoutGoesBehindUnanswered: a caller that gives up on a
// reply at the timeout and then writes (a delete that releases what its
// unanswered call may have set) finds the connection still open: the
// reader waits a grace past the timeout before it closes it, so the write
// goes out on the same connection, behind the unanswered call, and the
// server runs it once it answers again; no second connection is dialed.
func TestWriteAtTimeoutGoesBehindUnanswered(t *testing.T) {
	a := addr(t)
	var dials atomic.Int64
	pool := &redis.Pool{Dial: func() (redis.Conn, error) {
		dials.Add(1)
		return redis.Dial("tcp", a)
	}}
	defer pool.Close()
	const timeout = 2 * time.Second // the grace is 500ms; the write comes 250ms before its end
	var background sync.WaitGroup
	conn := pipeline.New(pool, timeout, nil, &background)
	defer func() {
		conn.Close()
		background.Wait()
	}()
	key := "lock:test:" + t.Name()
	got := newReplies(3)
	conn.Send(&pipeline.Call{Cmd: "DEL", Args: []any{key}, To: got, Index: 0})
	got.wait(t, 1, 5*time.Second)
	// The server is busy for 3s from now (a script on another connection).
	side := mustDial(t, a)
	if err := side.Send("EVAL", busyScript, 0, 3_000_000); err != nil {
		t.Fatal(err)
	}
	if err := side.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	conn.Send(&pipeline.Call{Cmd: "ECHO", Args: []any{"unanswered"}, To: got, Index: 1})
	// The caller gives up on the ECHO at the timeout, and writes a moment
	// later (an eighth of the timeout here, so that the outcome does not
	// hang on the scheduler: the grace is a quarter).
	time.Sleep(timeout + timeout/8)
	conn.Send(&pipeline.Call{Cmd: "SET", Args: []any{key, "behind", "PX", 10_000}, To: got, Index: 2})
	got.wait(t, 2, 5*time.Second)
	if _, err := redis.DoWithTimeout(side, 5*time.Second, ""); err != nil { // the script's reply
		t.Fatal(err)
	}
	if v, err := redis.String(redis.DoWithTimeout(side, time.Second, "GET", key)); err != nil || v != "behind" {
		t.Errorf("GET after the server answers again: %q, %v; want \"behind\": the write at the timeout did not go out", v, err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dials = %d, want 1: the write at the timeout found its connection closed and went on another", n)
	}
}

func mustDial(t *testing.T, addr string) redis.Conn {
	t.Helper()
	c, err := redis.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
