// Package pipeline is the transport of package redlock: one pipelined
// connection per Redis server, shared by every goroutine that sends to it.
// It knows commands, replies and Lua scripts, and nothing of locks.
//
// A [Conn] takes [Call] values from any number of goroutines. Whichever
// caller finds no one writing writes every call queued so far in one batch
// (Send... Flush), so that concurrent callers share write system calls,
// and one reader goroutine per connection matches the replies to the calls,
// in order. All calls to one server go over one connection, so the server
// runs them in the order they were written: a call sent after another on
// the same connection cannot overtake it. A call that had not gone out when
// its connection failed goes on the next one, where it may run before what
// the failed connection still held.
package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// Call is one command and where its reply goes.
type Call struct {
	Cmd  string // the command's name
	Args []any  // read, never changed, by the transport: calls may share them
	// Script is the script that Args[0] names when Cmd is EVALSHA, for the
	// recovery from NOSCRIPT (see Conn).
	Script *Script
	// Resend asks for the call to be sent again, whole, with EVAL, should
	// the server answer NOSCRIPT. Only for scripts that are harmless however
	// late they run.
	Resend bool
	// To gets the reply, or the failure, exactly once, as
	// To.Receive(Index, reply, err); nil when no one wants it.
	To    Receiver
	Index int // passed to To, to tell the calls it gets apart
}

// Receiver gets replies. Receive is called from the connection's reader
// goroutine (or the sender's, for a call that fails before it is written),
// so it must not block.
type Receiver interface {
	// Receive gets the reply or the failure of the call with this Index.
	Receive(index int, reply any, err error)
}

// done hands the call its reply or failure.
func (c *Call) done(reply any, err error) {
	if c.To != nil {
		c.To.Receive(c.Index, reply, err)
	}
}

func fail(batch []*Call, err error) {
	for _, c := range batch {
		c.done(nil, err)
	}
}

// Error is a failure of the connection rather than a reply of the
// server: the server could not be dialed (Dial), did not answer in time,
// or the connection broke or was closed. Server error replies come as
// redis.Error values instead.
type Error struct {
	Dial bool  // the connection could not be opened
	Err  error // what failed
}

// Error is Err's text.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// ErrClosed fails the calls still queued when the Conn is closed.
var ErrClosed = errors.New("connection closed")

// NoAnswer is the failure of a call, or a dial, that got no answer within
// the timeout it names.
type NoAnswer struct {
	After time.Duration // the timeout
}

// Error says how long the call waited.
func (e NoAnswer) Error() string { return fmt.Sprintf("no answer within %v", e.After) }
