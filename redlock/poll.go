package redlock

import (
	"context"
	"errors"

	"github.com/leverege/lock/internal/core"
)

var errPending = errors.New("no answer yet")

// vote is one master's answer to one request; err nil means yes.
type vote struct {
	node int
	err  error
}

// poll is one request fanned out to every master, one goroutine each, with
// a channel buffered for every answer so that no sender ever blocks, however
// early the caller stops listening.
type poll struct {
	votes    chan vote
	answered []chan struct{} // per node, when tracked: closed once it has answered
	errs     []error         // per node: errPending until it answers, then nil for yes
	yes, no  int
	quorum   int
}

// ask sends op to every master at once. With after (the answered channels
// of an earlier, tracked poll), a master gets op only once it has answered
// that poll, so that op cannot overtake the earlier request on its way
// there. Only the acquiring poll needs tracking (Extend and Unlock wait on
// it), so only it pays for the channels.
func (c *Client) ask(ctx context.Context, op func(context.Context, *node) error, after []chan struct{}, track bool) *poll {
	n := len(c.nodes)
	p := &poll{
		votes:  make(chan vote, n),
		errs:   make([]error, n),
		quorum: c.quorum,
	}
	for i := range n {
		p.errs[i] = errPending
	}
	if track {
		p.answered = make([]chan struct{}, n)
		for i := range n {
			p.answered[i] = make(chan struct{})
		}
	}
	for i := range c.nodes {
		node := &c.nodes[i]
		c.life.Go(func() {
			if after != nil {
				<-after[i]
			}
			err := op(ctx, node)
			if p.answered != nil {
				close(p.answered[i])
			}
			p.votes <- vote{i, err}
		})
	}
	return p
}

func (p *poll) pending() int { return len(p.errs) - p.yes - p.no }

func (p *poll) next() vote {
	v := <-p.votes
	p.errs[v.node] = v.err
	if v.err == nil {
		p.yes++
	} else {
		p.no++
	}
	return v
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

// failures returns the node errors among the answers so far, in node order.
func (p *poll) failures(c *Client) []*core.NodeError {
	var out []*core.NodeError
	for i, err := range p.errs {
		if err != nil && err != errPending {
			out = append(out, &core.NodeError{Node: i, Addr: c.nodes[i].name, Err: err})
		}
	}
	return out
}
