package redlock

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/leverege/lock/internal/core"
)

var (
	errPending = errors.New("no answer yet")
	errSkipped = errors.New("not asked")
)

// vote is one master's answer to one request; err nil means yes.
type vote struct {
	node int
	err  error
	val  int64 // what a yes carried (a fencing counter)
}

// poll is one request sent to every master at once. The answers come back
// on a channel with room for all of them, so that no reply is ever held up
// however early the caller stops listening; a master that has not answered
// within the node timeout counts as unreachable, and one whose answer comes
// later is ignored.
type poll struct {
	votes   chan vote
	errs    []error // per node: errPending until it answers, then nil for yes
	vals    []int64 // per node: what its yes carried
	yes, no int
	quorum  int
	timer   *time.Timer
	timeout time.Duration
	ctx     context.Context // when it ends, the answers still pending count as its error

	// With an observer: every answer is reported as a KindNode event.
	seen *observed

	// Room for the usual numbers of masters, so that a poll is one
	// allocation with its requests (a request still on its way after the
	// poll is done keeps it alive, which is why polls are not reused).
	errsBuf  [inline]error
	callsBuf [inline]call
}

// observed is what a poll needs to report answers to an observer.
type observed struct {
	obs   core.Observer
	op    string
	start time.Time
	c     *Client
}

// inline is how many masters a poll holds without more allocations.
const inline = 5

// timers are reused by polls: since Go 1.23 a stopped timer delivers
// nothing stale after Reset, so one poll's expiry cannot reach the next.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// ask sends, with build filling in each master's request, one request to
// every master but those that skip (which may be nil) names. ctx's end
// cuts the wait short (the requests already written still run); with
// context.Background only the node timeout does.
func (c *Client) ask(ctx context.Context, op string, skip func(int) bool, build func(*call)) *poll {
	return c.askThen(ctx, op, skip, build, nil)
}

// askThen is ask, calling queued (when not nil) once every request is
// queued and before any is written.
func (c *Client) askThen(ctx context.Context, op string, skip func(int) bool, build func(*call), queued func()) *poll {
	n := len(c.nodes)
	p := &poll{
		votes:   make(chan vote, n),
		quorum:  c.quorum,
		timeout: c.opts.nodeTimeout,
		ctx:     ctx,
	}
	var calls []call
	if n <= inline {
		p.errs, calls = p.errsBuf[:n], p.callsBuf[:n]
	} else {
		p.errs, calls = make([]error, n), make([]call, n)
	}
	if c.opts.fencing && op == "acquire" {
		p.vals = make([]int64, n) // the counters the yes votes carry
	}
	p.timer = timers.Get().(*time.Timer)
	p.timer.Reset(p.timeout)
	if c.opts.observer != nil {
		p.seen = &observed{c.opts.observer, op, time.Now(), c}
	}
	// Every request is queued first; the links this caller is to write for
	// are written after one yield of the processor, which lets the callers
	// that are ready to run queue theirs too, so that one write carries
	// many. A lone caller loses nothing by it: with no one else to run, the
	// yield returns at once.
	var mine uint64 // the links to write, when there are at most 64
	for i := range c.nodes {
		p.errs[i] = errPending
		if skip != nil && skip(i) {
			p.record(i, errSkipped)
			continue
		}
		cl := &calls[i]
		cl.node, cl.votes = i, p.votes
		build(cl)
		l := c.nodes[i].link
		cl.link = l
		if l.queue1(cl) {
			if i < 64 {
				mine |= 1 << i
			} else {
				l.write()
			}
		}
	}
	if queued != nil {
		queued()
	}
	if mine != 0 {
		runtime.Gosched()
		for i := range min(n, 64) {
			if mine&(1<<i) != 0 {
				c.nodes[i].link.write()
			}
		}
	}
	return p
}

func (p *poll) pending() int { return len(p.errs) - p.yes - p.no }

func (p *poll) record(node int, err error) {
	if p.errs[node] != errPending {
		return // it answered after it was given up on
	}
	p.errs[node] = err
	if err == nil {
		p.yes++
	} else {
		p.no++
	}
	if s := p.seen; s != nil && err != errSkipped {
		s.obs.Observe(core.Event{Kind: core.KindNode, Node: node, Addr: s.c.nodes[node].name, Op: s.op,
			Took: time.Since(s.start), Err: err})
	}
}

// next reads one answer, or gives up on every master still pending when the
// node timeout passes or the context ends.
func (p *poll) next() {
	var expired <-chan time.Time
	if p.timer != nil {
		expired = p.timer.C
	}
	var done <-chan struct{}
	done = p.ctx.Done() // nil, never ready, for context.Background
	var err error
	select {
	case v := <-p.votes:
		if p.errs[v.node] == errPending && p.vals != nil {
			p.vals[v.node] = v.val
		}
		p.record(v.node, v.err)
		return
	case <-expired:
		err = unreachable(context.DeadlineExceeded, p.timeout)
	case <-done:
		err = core.CtxErr(p.ctx)
	}
	for i, e := range p.errs {
		if e == errPending {
			p.record(i, err)
		}
	}
}

// decide reads answers until the outcome is certain: a quorum said yes, or
// so many said no that a quorum no longer can.
func (p *poll) decide() bool {
	for p.yes < p.quorum && p.no <= len(p.errs)-p.quorum {
		p.next()
	}
	return p.yes >= p.quorum
}

// wait reads every remaining answer.
func (p *poll) wait() {
	for p.pending() > 0 {
		p.next()
	}
}

// stop releases the timer; answers that come later are dropped, and a
// master still pending no longer times out.
func (p *poll) stop() {
	if p.timer != nil {
		p.timer.Stop()
		timers.Put(p.timer)
		p.timer = nil
	}
}

// maxYes is the largest number that a yes carried (0 when none did).
func (p *poll) maxYes() int64 {
	var m int64
	for i, err := range p.errs {
		if err == nil && p.vals != nil {
			m = max(m, p.vals[i])
		}
	}
	return m
}

// firstYes is the first master that said yes, or -1.
func (p *poll) firstYes() int {
	for i, err := range p.errs {
		if err == nil {
			return i
		}
	}
	return -1
}

// lost reports whether enough masters said the key is gone or another's
// (NotHeldHere) that no quorum can hold this value.
func (p *poll) lost() bool {
	gone := 0
	for _, err := range p.errs {
		if err == core.NotHeldHere {
			gone++
		}
	}
	return gone > len(p.errs)-p.quorum
}

// failures returns the node errors among the answers so far, in node order;
// masters not asked are left out.
func (p *poll) failures(c *Client) []*core.NodeError {
	var out []*core.NodeError
	for i, err := range p.errs {
		if err != nil && err != errPending && err != errSkipped {
			out = append(out, &core.NodeError{Node: i, Addr: c.nodes[i].name, Err: err})
		}
	}
	return out
}
