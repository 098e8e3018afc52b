package core

import (
	"context"
	"fmt"

	"github.com/leverege/lock/lockerr"
)

// Invalid returns an error wrapping lockerr.ErrInvalidArgument that names the
// argument and says what is wrong with it.
func Invalid(arg string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", lockerr.ErrInvalidArgument, arg, fmt.Sprintf(format, args...))
}

// CtxErr is what a call reports when ctx has ended: ctx.Err() together with
// the cause the caller gave (context.WithCancelCause and friends), so that
// errors.Is matches both. It is nil while ctx is live.
func CtxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	switch cause := context.Cause(ctx); cause {
	case err:
		return cause
	default:
		return fmt.Errorf("%w: %w", cause, err)
	}
}
