package benchmarks

import (
	"context"
	"testing"
	"time"
)

// TestImplementations checks that every adapter keeps the contract the
// benchmarks rely on, over three masters: a held key cannot be taken, a
// lock extends and unlocks, a second Unlock fails, and the key is free
// again afterwards.
func TestImplementations(t *testing.T) {
	addrs := servers(t)[:3]
	for _, impl := range everyImpl(1) {
		t.Run(impl, func(t *testing.T) {
			l, closeL, err := newLocker(impl, addrs, retry{})
			if err != nil {
				t.Fatal(err)
			}
			defer closeL()
			ctx := context.Background()
			key := uniqueKey("check")
			h, err := l.Lock(ctx, key, ttl)
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			if _, err := l.Lock(short, key, ttl); err == nil {
				t.Error("a held key was locked again")
			}
			cancel()
			if h, err = h.Extend(ctx, ttl); err != nil {
				t.Fatal(err)
			}
			if err := h.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
			if err := h.Unlock(ctx); err == nil {
				t.Error("a second Unlock succeeded")
			}
			h, err = l.Lock(ctx, key, ttl)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
