package redlock

import (
	"fmt"
	"time"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/lockerr"
)

// The restart protection (WithRestartDelay) lives in acquire.lua: a master
// that has been up for less than the restart delay, or whose dataset or
// replication history is younger than it (the marker key, MarkerKey,
// holds "<born>:<replid>": the server time at which a client first found
// the dataset without it, and the master's replication ID then; a master
// with another ID was promoted or restarted since), answers -N instead of
// acquiring: its vote counts again in N ms. Here: what that answer means,
// and the limit it puts on a ttl.

// rejoining is the vote of a master that answered -n.
func rejoining(n int64) error {
	wait := time.Duration(-n) * time.Millisecond
	return fmt.Errorf("%w: restarted, lost its data or took over a new history (promoted); its vote counts again in %v", lockerr.ErrRejoining, wait)
}

// checkRestartTTL refuses a ttl longer than the restart delay: a master
// that restarted would vote again before such a lock it granted had
// expired everywhere else.
func (o *options) checkRestartTTL(ttl time.Duration) error {
	if o.restartDelay > 0 && ttl > o.restartDelay {
		return core.Invalid("ttl", "%v must not exceed the restart delay %v", ttl, o.restartDelay)
	}
	return nil
}
