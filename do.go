package lock

import (
	"context"
	"time"

	"github.com/leverege/lock/internal/core"
)

// DoOption tunes [Do].
type DoOption = core.DoOption

// RenewEvery sets how often Do extends the lock: an Extend starts d after
// the previous one (or the acquisition) started. Default ttl/3, so that two
// more tries fit in the validity should one fail. d must be positive and
// less than the ttl.
func RenewEvery(d time.Duration) DoOption { return core.RenewEvery(d) }

// Guard sets how long before the end of the validity window Do cancels the
// function's context if no Extend has succeeded by then. Default ttl/50 (at
// least 1ms), so that the function learns that the lock is lost before
// another client can hold it.
func Guard(d time.Duration) DoOption { return core.Guard(d) }

// Namespaced makes Do lock "<namespace>:<key>", as LockNs does.
func Namespaced() DoOption { return core.DoNamespaced() }

// Do acquires key for ttl, runs fn while it holds the lock, and unlocks it
// when fn returns. While fn runs, Do extends the lock in the background (see
// RenewEvery), and it cancels fn's context, with a cause matching ErrLost,
// the moment the lock can no longer be trusted: an Extend found the lock
// gone (ErrNotHeld), or the validity window is about to end (see Guard)
// before an Extend succeeded. An Extend that merely failed to reach a quorum
// is tried again while the validity lasts. fn should stop its work when its
// context ends; Do waits for fn to return.
//
// Do returns Lock's error when the lock was not acquired (fn is not
// called), and otherwise fn's error, joined with an *Error matching ErrLost
// when the lock was lost while fn ran, and with Unlock's error, if any:
// errors.Is tells them apart. fn gets the lock as acquired; Do extends its
// own copies, so its Expiration is the first validity only: rely on fn's
// context, which Do ends when the lock can no longer be trusted.
func Do(ctx context.Context, l Locker, key string, ttl time.Duration, fn func(context.Context, Lock) error, opts ...DoOption) error {
	return core.Do(ctx, l, key, ttl, fn, opts...)
}

// Context returns a context that ends when parent does or when l's validity
// window ends, whichever comes first: its deadline is l.Expiration(). Work
// that must not outlive the lock can run under it; after an Extend, take a
// new one from the new Lock.
func Context(parent context.Context, l Lock) (context.Context, context.CancelFunc) {
	return context.WithDeadline(parent, l.Expiration())
}
