//go:build lockbroken

package redlock

import "github.com/leverege/lock/internal/pipeline"

// Broken breaks the algorithm on purpose in the ways other libraries have,
// so that the safety suite can show its checker catching each. It exists
// only under the build tag lockbroken (go test -tags lockbroken); normal
// builds have neither it nor WithBroken.
type Broken struct {
	HalfQuorum bool // quorum N/2 (at least 1) instead of N/2+1
	NoDrift    bool // no drift allowance: validity is start + ttl
	PlainDel   bool // release with a plain DEL instead of compare-and-delete
	LateStart  bool // validity measured from after the replies, not before the requests
	Silent     bool // Unlock does not announce releases (waiters elsewhere sleep through)
}

// WithBroken makes the Client break the algorithm as b says.
func WithBroken(b Broken) Option { return func(o *options) { o.broken = broken(b) } }

type broken Broken

func (b broken) halfQuorum() bool { return b.HalfQuorum }
func (b broken) noDrift() bool    { return b.NoDrift }
func (b broken) lateStart() bool  { return b.LateStart }
func (b broken) silent() bool     { return b.Silent }

func (b broken) release(keys keySet) (request, bool) {
	if !b.PlainDel {
		return nil, false
	}
	return plainDelete{keys}, true
}

// plainDelete deletes the keys whoever holds them: the bug that
// compare-and-delete exists to prevent.
type plainDelete struct{ keys keySet }

func (plainDelete) op() op       { return opRelease }
func (plainDelete) grants() bool { return false }

func (d plainDelete) command(args []any) pipeline.Call {
	return pipeline.Call{Cmd: "DEL", Args: d.keys.appendTo(args)}
}

func (plainDelete) vote(any) (int64, error) { return 0, nil }
