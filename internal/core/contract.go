package core

import (
	"context"
	"iter"
	"slices"
	"strings"
	"time"
)

// Lock is one acquisition of a key. A Lock is immutable and safe for
// concurrent use; Extend returns a new Lock with the new Expiration, and the
// old value still names the same acquisition (Unlock works on either).
type Lock interface {
	// Key is the key as stored, namespace included; for a lock on several
	// keys (LockAll), the first.
	Key() string
	// Keys is every key of the lock: Key alone, or all that LockAll locked.
	Keys() []string
	// Value is the random value that this acquisition stored; it is unique
	// per acquisition and is what Extend and Unlock compare against.
	Value() string
	// Expiration is the end of the validity window: until then, and only
	// under the clock assumptions of the algorithm, no other owner can hold
	// the key. It carries a monotonic clock reading.
	Expiration() time.Time
	// Token is the acquisition's fencing token when fencing is on (0 when
	// it is off): greater than every token given out before for the same
	// key, by any client of the same masters, as long as the masters keep
	// their data. Pass it to the protected resource, which should refuse a
	// write that carries a smaller token than one it has seen. Extend keeps
	// it.
	Token() uint64
	// Extend resets the key's time to live to ttl on a quorum and returns the
	// lock with its new validity. It never deletes the key. It fails with
	// ErrNotHeld when the lock has expired or is no longer ours, and with
	// ErrNoQuorum when too few masters answered or ctx ended (the lock keeps
	// its old Expiration).
	Extend(ctx context.Context, ttl time.Duration) (Lock, error)
	// Unlock deletes the key wherever it still holds this lock's value and
	// nowhere else, even when ctx has ended. It may return once a quorum has
	// deleted it, with the other deletes still on their way. It fails with ErrNotHeld when
	// fewer than a quorum held it, and with ErrNoQuorum when too few masters
	// answered; what is left expires with its ttl.
	Unlock(ctx context.Context) error
}

// Locker hands out locks. Implementations are safe for concurrent use.
type Locker interface {
	// Lock acquires key as given, retrying according to the options, and
	// returns a Lock valid for at most ttl.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// LockNs is Lock on "<namespace>:<key>".
	LockNs(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// LockAll acquires all of keys, as given, or none, with the same
	// quorum, validity, Extend and Unlock semantics as Lock. keys must not
	// be empty nor hold a key twice (ErrInvalidArgument).
	LockAll(ctx context.Context, keys []string, ttl time.Duration) (Lock, error)
	// LockAllNs is LockAll on "<namespace>:<key>" for every key.
	LockAllNs(ctx context.Context, keys []string, ttl time.Duration) (Lock, error)
	// Destroy interrupts calls in flight (they fail with ErrDestroyed after
	// releasing anything partly acquired), waits for them, and frees the
	// Locker's resources. Later calls fail with ErrDestroyed. Destroy is
	// idempotent; locks still held are left to expire.
	Destroy() error
}

// Namespaced is the one place that builds a namespaced key. An empty
// namespace leaves the key as it is.
func Namespaced(namespace, key string) string {
	if namespace == "" {
		return key
	}
	return namespace + ":" + key
}

// CheckKey rejects keys that cannot be locked.
func CheckKey(key string) error {
	switch {
	case key == "":
		return Invalid("key", "must not be empty")
	case key == MarkerKey:
		return Invalid("key", "%q is reserved for the restart protection", key)
	case strings.HasPrefix(key, FenceKeyPrefix):
		return Invalid("key", "%q: keys starting %q are reserved for fencing counters", key, FenceKeyPrefix)
	}
	return nil
}

// The keys the library keeps for itself, which no lock may take (both
// backends refuse them, so that code moves between them unchanged).
const (
	MarkerKey      = "lock:__dataset_born__" // redlock's restart protection
	FenceKeyPrefix = "lock:fence:"           // + key: a key's fencing counter
)

// KeySet checks a set of keys for LockAll: not empty, every key valid
// (CheckKey) and given once, and, with fencing, a single key (tokens are
// per key). It returns the first key and, for a set of several, a copy of
// the set (nil for one key, which is a plain lock).
func KeySet(keys []string, fencing bool) (first string, set []string, err error) {
	if len(keys) == 0 {
		return "", nil, Invalid("keys", "the set is empty: give at least one key")
	}
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k == "" {
			return "", nil, Invalid("keys", "key %d is empty", i)
		}
		if err := CheckKey(k); err != nil {
			return "", nil, err
		}
		if seen[k] {
			return "", nil, Invalid("keys", "%q is given twice", k)
		}
		seen[k] = true
	}
	if len(keys) == 1 {
		return keys[0], nil, nil
	}
	if fencing {
		return "", nil, Invalid("keys", "fencing tokens are given for single keys; lock one key, or turn fencing off")
	}
	return keys[0], slices.Clone(keys), nil
}

// Each yields a lock's keys: key alone when keys is nil, else keys (a lock
// on a set, whose first is key).
func Each(key string, keys []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if keys == nil {
			yield(key)
			return
		}
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	}
}

// NamespacedAll is Namespaced for each of keys (LockAllNs); an empty key is
// refused, as LockNs refuses it.
func NamespacedAll(ns string, keys []string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
		out[i] = Namespaced(ns, k)
	}
	return out, nil
}

// CheckTTL rejects a ttl that is under a millisecond (the unit in which
// locks expire) or leaves no validity window once the drift allowance is
// taken off.
func CheckTTL(ttl, drift time.Duration) error {
	if ttl <= 0 {
		return Invalid("ttl", "%v must be positive", ttl)
	}
	if ttl < time.Millisecond {
		return Invalid("ttl", "%v must be at least 1ms (locks expire in whole milliseconds)", ttl)
	}
	if ttl.Truncate(time.Millisecond) <= drift {
		return Invalid("ttl", "%v must be larger than the clock drift allowance %v", ttl, drift)
	}
	return nil
}
