package lock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCreateDefaultsToMemory(t *testing.T) {
	ctx := t.Context()
	l, err := lock.Create(lock.Options{Namespace: "app"})
	require.NoError(t, err)
	defer l.Destroy()
	lk, err := l.LockNs(ctx, "k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "app:k", lk.Key())
	// The default retries nothing: a held key fails at once.
	start := time.Now()
	_, err = l.LockNs(ctx, "k", time.Second)
	require.ErrorIs(t, err, lock.ErrNotAcquired)
	assert.Less(t, time.Since(start), 50*time.Millisecond)
	require.NoError(t, lk.Unlock(ctx))
}

func TestCreateNamespaceFromConfig(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct{ opt, cfg, want string }{
		{"", "cfg", "cfg:k"},
		{"opt", "cfg", "opt:k"},
		{"", "", "k"},
	} {
		l, err := lock.Create(lock.Options{Namespace: tc.opt, LockConfig: &config.Config{Type: config.InMemory, Namespace: tc.cfg}})
		require.NoError(t, err)
		lk, err := l.LockNs(ctx, "k", time.Second)
		require.NoError(t, err)
		assert.Equal(t, tc.want, lk.Key(), "Options.Namespace %q, config namespace %q", tc.opt, tc.cfg)
		require.NoError(t, l.Destroy())
	}
}

func TestCreateRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.Config
		want string
	}{
		{config.Config{Type: "etcd"}, `type: unknown type "etcd"`},
		{config.Config{}, "type: missing"},
		{config.Config{Type: config.Redis}, "connection"},
		{config.Config{Type: config.InMemory, Delay: -1}, "delay"},
		{config.Config{Type: config.Redis, Connections: []config.Connection{{Host: "h", Port: 1}}}, "nodeTimeout"},
	} {
		_, err := lock.Create(lock.Options{LockConfig: &tc.cfg})
		if assert.Error(t, err, "%+v", tc.cfg) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	ctx := t.Context()
	t.Setenv(lock.EnvVar, "")
	l, err := lock.FromEnv("ns")
	require.NoError(t, err, "unset LOCK_CONFIG is the in-memory default")
	lk, err := l.LockNs(ctx, "k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "ns:k", lk.Key())
	require.NoError(t, l.Destroy())

	t.Setenv(lock.EnvVar, `{"namespace":"test","lockConfig":{"type":"inMemory","retry":-1,"delay":1}}`)
	l, err = lock.FromEnv("")
	require.NoError(t, err)
	defer l.Destroy()
	lk, err = l.LockNs(ctx, "k", 30*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, "test:k", lk.Key())
	lk2, err := l.LockNs(ctx, "k", time.Second)
	require.NoError(t, err, "retry -1 waits for the first lock to expire")
	assert.False(t, time.Now().Before(lk.Expiration()))
	require.NoError(t, lk2.Unlock(ctx))

	t.Setenv(lock.EnvVar, `{"type":"redis","connection":{"port":"6379"}}`)
	_, err = lock.FromEnv("")
	require.Error(t, err)
	assert.Equal(t, "LOCK_CONFIG: config: connection.port: want an integer, got string", err.Error())
}

func TestErrorsAreShared(t *testing.T) {
	// Errors from the root, redlock and memlock are one set of values.
	l, err := lock.Create(lock.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Destroy())
	_, err = l.Lock(t.Context(), "k", time.Second)
	assert.ErrorIs(t, err, lock.ErrDestroyed)
	var le *lock.Error
	require.True(t, errors.As(err, &le))
	assert.Equal(t, "k", le.Key)
}
