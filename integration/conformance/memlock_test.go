package conformance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration/conformance"
)

// The in-memory backend passes the suite too; the Redis one does in
// integration/redlock, integration/production (TLS, ACL users) and the
// fault suite.

// TestConformance runs the shared suite through the factory, as a user of
// Create would get the in-memory lock.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		Masters: 1,
		New: func(t *testing.T, o conformance.Opts) lock.Locker {
			l, err := lock.Create(lock.Options{Namespace: o.Namespace, Observer: o.Observer, LockConfig: &config.Config{
				Type: config.InMemory, Retry: o.Retry, Delay: o.Delay,
				LockOptions: config.LockOptions{Fencing: o.Fencing},
			}})
			require.NoError(t, err)
			return l
		},
		Plant: func(t *testing.T, l lock.Locker, _ int, key string, ttl time.Duration) {
			_, err := l.Lock(t.Context(), key, ttl)
			require.NoError(t, err, "plant %q", key)
		},
		Separate: true,
	})
}
