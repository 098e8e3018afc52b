package redlock

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/leverege/lock/lockerr"
)

func TestDrift(t *testing.T) {
	for _, tc := range []struct {
		factor float64
		ttl    time.Duration
		want   time.Duration
	}{
		{0.01, 10 * time.Second, 102 * time.Millisecond},
		{0.01, time.Second, 12 * time.Millisecond},
		{0.01, 1049 * time.Millisecond, 12 * time.Millisecond}, // 10.49 rounds down
		{0.01, 1050 * time.Millisecond, 13 * time.Millisecond}, // 10.5 rounds up
		{0, time.Second, 2 * time.Millisecond},
		{0.5, 4 * time.Millisecond, 4 * time.Millisecond},
	} {
		o := options{driftFactor: tc.factor}
		if got := o.drift(tc.ttl); got != tc.want {
			t.Errorf("drift factor %v: drift(%v) = %v, want %v", tc.factor, tc.ttl, got, tc.want)
		}
	}
}

// TestDecide feeds answers in every order for small N and checks that the
// fan-out stops exactly when the outcome is certain, and decides right.
func TestDecide(t *testing.T) {
	no := errors.New("no")
	for n := 1; n <= 5; n++ {
		quorum := n/2 + 1
		for mask := range 1 << n { // bit i set: master i says yes
			p := &fanout{c: &Client{quorum: quorum}, votes: make(chan vote, n), answers: make([]error, n), ctx: context.Background()}
			yes := 0
			for i := range n {
				p.answers[i] = errPending
				var err error
				if mask&(1<<i) == 0 {
					err = no
				} else {
					yes++
				}
				p.votes <- vote{i, err, 0}
			}
			got := p.decide()
			name := fmt.Sprintf("N=%d yes=%0*b", n, n, mask)
			if want := yes >= quorum; got != want {
				t.Errorf("%s: decide() = %v, want %v (quorum %d)", name, got, want, quorum)
			}
			// It read no more answers than it needed: it stopped at the
			// first answer that settled the outcome.
			read := p.yes + p.no
			if p.yes != quorum && p.no != n-quorum+1 {
				t.Errorf("%s: decide() stopped at yes=%d no=%d, want yes=%d or no=%d (the first answer that settles it)",
					name, p.yes, p.no, quorum, n-quorum+1)
			}
			if got := len(p.votes); got != n-read {
				t.Errorf("%s: %d answers left unread after decide(), want %d (%d answers, %d counted)", name, got, n-read, n, read)
			}
		}
	}
}

func TestFailuresInNodeOrder(t *testing.T) {
	c := &Client{masters: []master{{name: "a"}, {name: "b"}, {name: "c"}}}
	p := &fanout{c: c, answers: []error{lockerr.ErrTaken, nil, errPending}}
	f := p.failures()
	want := &lockerr.NodeError{Node: 0, Addr: "a", Err: lockerr.ErrTaken}
	switch {
	case len(f) != 1:
		t.Errorf("failures() = %v, want one: %v", f, want)
	case !reflect.DeepEqual(f[0], want):
		t.Errorf("failures() = [%+v], want [%+v]", f[0], want)
	}
}
