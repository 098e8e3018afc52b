package core

import "time"

// The defaults, in one place: config, redlock and memlock re-export them.
// The lock options are node-redlock v4's, the in-memory ones the original
// README's; the node timeout is ours.
const (
	DefaultDriftFactor = 0.01
	DefaultRetryCount  = 10
	DefaultRetryDelay  = 200 * time.Millisecond
	DefaultRetryJitter = 100 * time.Millisecond
	// DefaultNodeTimeout bounds each command to one master, connection
	// included. The Redlock spec advises a per-node timeout far below the
	// ttl (5-50 ms for a 10 s ttl) so that a dead master costs little.
	DefaultNodeTimeout = 50 * time.Millisecond

	// MinAckNodeTimeout is the shortest node timeout that replica
	// acknowledgements (replicaAcks) work with: a master ends a WAIT that
	// times out only on its next cron tick (every 100 ms at Redis's
	// default hz 10), and the answer must come before the master is given
	// up on. The WAIT gets the node timeout less AckMargin.
	MinAckNodeTimeout = 200 * time.Millisecond
	AckMargin         = 150 * time.Millisecond

	DefaultMemRetry = 0
	DefaultMemDelay = 100 * time.Millisecond
)
