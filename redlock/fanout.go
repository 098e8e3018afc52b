package redlock

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

var (
	errPending = errors.New("no answer yet")
	errSkipped = errors.New("not asked")
)

// vote is one master's answer to one request; err nil means yes.
type vote struct {
	master int
	err    error
	value  int64 // what a yes carried (a fencing counter)
}

// fanout is one request sent to every master at once, and the count of
// their answers. The answers come back on a channel with room for all of
// them, so that no reply is ever held up however early the caller stops
// listening; a master that has not answered within the node timeout counts
// as unreachable, and one whose answer comes later is ignored.
type fanout struct {
	c       *Client
	req     request
	votes   chan vote
	answers []error // per master: errPending until it answers, then nil for yes
	values  []int64 // per master: what its yes carried; nil until one carries something
	yes, no int
	timer   *time.Timer
	ctx     context.Context // when it ends, the answers still pending count as its error
	began   time.Time       // with an observer: every answer is reported with its latency
	toWrite uint64          // the connections the sender writes for (the first 64)
	// With WithReplicaAcks, a granting request is followed by WAIT on every
	// master, and a master's yes (held until then) counts once enough
	// replicas have it.
	acks  int
	held  []heldYes // per master, set and read on its connection's reader
	waits []pipeline.Call

	// Room for the usual numbers of masters and arguments, so that a
	// fan-out is one allocation with its calls (a call still on its way
	// after the fan-out is done keeps it alive, which is why fan-outs are
	// not reused).
	answersBuf [inline]error
	callsBuf   [inline]pipeline.Call
	argsBuf    [12]any
}

// heldYes is a master's yes that waits for its WAIT's answer, with what it
// carried.
type heldYes struct {
	yes   bool
	value int64
}

// inline is how many masters a fan-out holds without more allocations.
const inline = 5

// timers are reused by fan-outs: since Go 1.23 a stopped timer delivers
// nothing stale after Reset, so one fan-out's expiry cannot reach the next.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// send queues req on the connection of every master but those that
// answered except (when not nil) with "taken", and returns the fan-out
// awaiting their answers; flush then writes them. ctx's end cuts the wait
// for answers short (the requests written still run); with
// context.Background only the node timeout does.
func (c *Client) send(ctx context.Context, req request, except *fanout) *fanout {
	n := len(c.masters)
	f := &fanout{c: c, req: req, votes: make(chan vote, n), ctx: ctx}
	var calls []pipeline.Call
	if n <= inline {
		f.answers, calls = f.answersBuf[:n], f.callsBuf[:n]
	} else {
		f.answers, calls = make([]error, n), make([]pipeline.Call, n)
	}
	cmd := req.command(f.argsBuf[:0])
	var wait pipeline.Call
	if req.grants() && c.opts.replicaAcks > 0 {
		f.acks = c.opts.replicaAcks
		f.held, f.waits = make([]heldYes, n), make([]pipeline.Call, n)
		// Within the node timeout, so that the answer comes before the
		// master is given up on, even on the master's next 100 ms tick
		// (New makes sure there is room for it).
		ms := (c.opts.nodeTimeout - core.AckMargin).Milliseconds()
		wait = pipeline.Call{Cmd: "WAIT", Args: []any{f.acks, ms}, To: f}
	}
	f.timer = timers.Get().(*time.Timer)
	f.timer.Reset(c.opts.nodeTimeout)
	if c.opts.observer != nil {
		f.began = time.Now()
	}
	for i, m := range c.masters {
		f.answers[i] = errPending
		if except != nil && except.answers[i] == lockerr.ErrTaken {
			f.record(i, errSkipped)
			continue
		}
		call := &calls[i]
		*call = cmd
		call.To, call.Index = f, i
		var writer bool
		if f.acks > 0 {
			// The WAIT must follow its request on the same connection (it
			// waits for that connection's last write), so both are queued
			// together. After NOSCRIPT the request is not sent again: its
			// WAIT has gone, and a yes would wait for it in vain.
			call.Resend = false
			f.waits[i] = wait
			f.waits[i].Index = n + i // tells the WAIT's reply from the request's
			writer = m.conn.Enqueue(call, &f.waits[i])
		} else {
			writer = m.conn.Enqueue(call)
		}
		if writer {
			if i < 64 {
				f.toWrite |= 1 << i
			} else {
				m.conn.Write()
			}
		}
	}
	return f
}

// flush writes what send queued on the connections this caller is the
// writer of, after one yield of the processor: that lets the callers that
// are ready to run queue theirs too, so that one write carries many. A
// lone caller loses nothing by it: with no one else to run, the yield
// returns at once.
func (f *fanout) flush() {
	if f.toWrite == 0 {
		return
	}
	runtime.Gosched()
	for i := range min(len(f.answers), 64) {
		if f.toWrite&(1<<i) != 0 {
			f.c.masters[i].conn.Write()
		}
	}
}

// Receive is the transport's hand-over of master i's reply (see
// pipeline.Receiver), on its reader goroutine; indexes from n on are the
// replies to the WAITs that follow granting requests.
func (f *fanout) Receive(i int, reply any, err error) {
	n := len(f.answers)
	if i >= n {
		i -= n
		if !f.held[i].yes {
			return // the request's answer was a no, and went as it came
		}
		if err == nil {
			err = replicated(reply, f.acks)
		} else {
			err = masterError(err)
		}
		f.votes <- vote{i, err, f.held[i].value}
		return
	}
	var value int64
	if err != nil {
		err = masterError(err)
		if errors.Is(err, lockerr.ErrReadOnly) {
			f.c.contacts.readOnly(i)
		}
	} else {
		value, err = f.req.vote(reply)
		err = f.c.contacts.asMaster(i, err)
	}
	if err == nil && f.req.grants() {
		if f.c.opts.requireNoEviction && f.c.contacts.evicts(i) {
			err = f.c.contacts.evictable(i)
		} else if f.acks > 0 {
			f.held[i] = heldYes{true, value}
			return
		}
	}
	f.votes <- vote{i, err, value}
}

func (f *fanout) pending() int { return len(f.answers) - f.yes - f.no }

func (f *fanout) record(master int, err error) {
	if f.answers[master] != errPending {
		return // it answered after it was given up on
	}
	f.answers[master] = err
	if err == nil {
		f.yes++
	} else {
		f.no++
	}
	if obs := f.c.opts.observer; obs != nil && err != errSkipped {
		obs.Observe(observe.Event{Kind: observe.KindNode, Node: master, Addr: f.c.masters[master].name,
			Op: f.req.op().String(), Took: time.Since(f.began), Err: err})
	}
}

// next reads one answer, or gives up on every master still pending when
// the node timeout passes or the context ends.
func (f *fanout) next() {
	var expired <-chan time.Time
	if f.timer != nil {
		expired = f.timer.C
	}
	var err error
	select {
	case v := <-f.votes:
		if v.value != 0 && f.answers[v.master] == errPending {
			if f.values == nil {
				f.values = make([]int64, len(f.answers))
			}
			f.values[v.master] = v.value
		}
		f.record(v.master, v.err)
		return
	case <-expired:
		err = unreachable(pipeline.NoAnswer{After: f.c.opts.nodeTimeout})
	case <-f.ctx.Done(): // nil, never ready, for context.Background
		err = core.CtxErr(f.ctx)
	}
	for i, e := range f.answers {
		if e == errPending {
			f.record(i, err)
		}
	}
}

// decide reads answers until the outcome is certain: a quorum said yes, or
// so many said no that a quorum no longer can. It reports whether a quorum
// said yes.
func (f *fanout) decide() bool {
	q := f.c.quorum
	for f.yes < q && f.no <= len(f.answers)-q {
		f.next()
	}
	return f.yes >= q
}

// wait reads every remaining answer.
func (f *fanout) wait() {
	for f.pending() > 0 {
		f.next()
	}
}

// stop releases the timer; answers that come later are dropped, and a
// master still pending no longer times out.
func (f *fanout) stop() {
	if f.timer != nil {
		f.timer.Stop()
		timers.Put(f.timer)
		f.timer = nil
	}
}

// largest is the largest number that a yes carried (0 when none did).
func (f *fanout) largest() int64 {
	var m int64
	for i, err := range f.answers {
		if err == nil && f.values != nil {
			m = max(m, f.values[i])
		}
	}
	return m
}

// firstYes is the first master that said yes, or -1.
func (f *fanout) firstYes() int {
	for i, err := range f.answers {
		if err == nil {
			return i
		}
	}
	return -1
}

// lost reports whether enough masters said the key is gone or another's
// (ErrNotHeldHere) that no quorum can hold this value.
func (f *fanout) lost() bool {
	gone := 0
	for _, err := range f.answers {
		if err == lockerr.ErrNotHeldHere {
			gone++
		}
	}
	return gone > len(f.answers)-f.c.quorum
}

// failures returns the masters' errors among the answers so far, in
// master order; masters not asked are left out.
func (f *fanout) failures() []*lockerr.NodeError {
	var out []*lockerr.NodeError
	for i, err := range f.answers {
		if err != nil && err != errPending && err != errSkipped {
			out = append(out, &lockerr.NodeError{Node: i, Addr: f.c.masters[i].name, Err: err})
		}
	}
	return out
}
