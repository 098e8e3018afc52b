package redlock

import (
	"errors"
	"fmt"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/internal/pipeline"
)

// The errors that Client and Lock return; they are the same values as the
// root package's, so errors.Is matches either.
var (
	ErrNotAcquired     = core.ErrNotAcquired
	ErrNotHeld         = core.ErrNotHeld
	ErrNoQuorum        = core.ErrNoQuorum
	ErrDestroyed       = core.ErrDestroyed
	ErrInvalidArgument = core.ErrInvalidArgument
)

// masterError is what a master's failure to answer a request means, for
// its NodeError: a failure of the connection (no answer in time, a broken
// connection, a failed dial) is ErrUnreachable; anything else is the
// server's own error reply, carried as it is.
func masterError(err error) error {
	var conn *pipeline.Error
	if errors.As(err, &conn) {
		return unreachable(conn)
	}
	return err
}

// unreachable wraps a failure to reach a master.
func unreachable(err error) error {
	return fmt.Errorf("%w: %w", core.ErrUnreachable, err)
}
