package core

// Variant deliberately breaks the Redis algorithm in one of the ways other
// libraries have, so that the safety suite can show its checker catching
// each. The zero Variant is the real algorithm; nothing outside the tests
// ever sets another.
type Variant struct {
	HalfQuorum bool // quorum N/2 (at least 1) instead of N/2+1
	NoDrift    bool // no drift allowance: validity is start + ttl
	PlainDel   bool // release with a plain DEL instead of compare-and-delete
	LateStart  bool // validity measured from after the replies, not before the requests
	Silent     bool // Unlock does not announce releases (waiters elsewhere sleep through)
}

// RedlockVariant is set by package redlock to a function that turns a
// Variant into a redlock.Option (returned as any, since this package cannot
// name that type). Only tests call it.
var RedlockVariant func(Variant) any
