package core

import (
	"iter"
	"slices"
	"strings"
	"time"
)

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
