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

	DefaultMemRetry = 0
	DefaultMemDelay = 100 * time.Millisecond
)
