package lock_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/internal/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }

func TestCreateDefaultsToMemory(t *testing.T) {
	ctx := t.Context()
	l, err := lock.Create(lock.Options{Namespace: "app"})
	if err != nil {
		t.Fatalf(`Create(Options{Namespace: "app"}) err = %v, want nil`, err)
	}
	defer l.Destroy()
	lk, err := l.LockNs(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf(`LockNs("k", 1s) err = %v, want nil`, err)
	}
	if got := lk.Key(); got != "app:k" {
		t.Errorf(`LockNs("k").Key() = %q, want "app:k"`, got)
	}
	// The default retries nothing: a held key fails at once.
	start := time.Now()
	_, err = l.LockNs(ctx, "k", time.Second)
	if !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf(`LockNs("k", 1s) of a held key: err = %v, want lock.ErrNotAcquired`, err)
	}
	if took := time.Since(start); took >= 50*time.Millisecond {
		t.Errorf(`LockNs("k", 1s) of a held key took %v, want less than 50ms: the default retries nothing`, took)
	}
	if err := lk.Unlock(ctx); err != nil {
		t.Fatalf("Unlock() = %v, want nil", err)
	}
}

func TestCreateNamespaceFromConfig(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct{ opt, cfg, want string }{
		{"", "cfg", "cfg:k"},
		{"opt", "cfg", "opt:k"},
		{"", "", "k"},
	} {
		l, err := lock.Create(lock.Options{Namespace: tc.opt, LockConfig: &config.Config{Type: config.InMemory, Namespace: tc.cfg}})
		if err != nil {
			t.Fatalf("Create(Options.Namespace %q, config namespace %q) err = %v, want nil", tc.opt, tc.cfg, err)
		}
		lk, err := l.LockNs(ctx, "k", time.Second)
		if err != nil {
			t.Fatalf(`LockNs("k", 1s) err = %v, want nil`, err)
		}
		if got := lk.Key(); got != tc.want {
			t.Errorf(`Options.Namespace %q, config namespace %q: LockNs("k").Key() = %q, want %q`, tc.opt, tc.cfg, got, tc.want)
		}
		if err := l.Destroy(); err != nil {
			t.Fatalf("Destroy() = %v, want nil", err)
		}
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
		switch {
		case err == nil:
			t.Errorf("Create(LockConfig %+v) err = nil, want an error containing %q", tc.cfg, tc.want)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("Create(LockConfig %+v) err = %v, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	ctx := t.Context()
	t.Setenv(lock.EnvVar, "")
	l, err := lock.FromEnv("ns")
	if err != nil {
		t.Fatalf(`FromEnv("ns") with LOCK_CONFIG empty: err = %v, want nil: unset LOCK_CONFIG is the in-memory default`, err)
	}
	lk, err := l.LockNs(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf(`LockNs("k", 1s) err = %v, want nil`, err)
	}
	if got := lk.Key(); got != "ns:k" {
		t.Errorf(`FromEnv("ns"): LockNs("k").Key() = %q, want "ns:k"`, got)
	}
	if err := l.Destroy(); err != nil {
		t.Fatalf("Destroy() = %v, want nil", err)
	}

	t.Setenv(lock.EnvVar, `{"namespace":"test","lockConfig":{"type":"inMemory","retry":-1,"delay":1}}`)
	l, err = lock.FromEnv("")
	if err != nil {
		t.Fatalf(`FromEnv("") with an inMemory LOCK_CONFIG: err = %v, want nil`, err)
	}
	defer l.Destroy()
	lk, err = l.LockNs(ctx, "k", 30*time.Millisecond)
	if err != nil {
		t.Fatalf(`LockNs("k", 30ms) err = %v, want nil`, err)
	}
	if got := lk.Key(); got != "test:k" {
		t.Errorf(`FromEnv("") with LOCK_CONFIG namespace "test": LockNs("k").Key() = %q, want "test:k"`, got)
	}
	lk2, err := l.LockNs(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf(`LockNs("k", 1s) of a key held for 30ms: err = %v, want nil: retry -1 waits for the first lock to expire`, err)
	}
	if now := time.Now(); now.Before(lk.Expiration()) {
		t.Errorf(`LockNs("k", 1s) of a held key returned %v before the first lock expired`, lk.Expiration().Sub(now))
	}
	if err := lk2.Unlock(ctx); err != nil {
		t.Fatalf("Unlock() = %v, want nil", err)
	}

	t.Setenv(lock.EnvVar, `{"type":"redis","connection":{"port":"6379"}}`)
	_, err = lock.FromEnv("")
	if err == nil {
		t.Fatalf(`FromEnv("") with a string port: err = nil, want an error`)
	}
	if got, want := err.Error(), "LOCK_CONFIG: config: connection.port: want an integer, got string"; got != want {
		t.Errorf(`FromEnv("") with a string port: err = %q, want %q`, got, want)
	}
}

func TestErrorsAreShared(t *testing.T) {
	// Errors from the root, redlock and memlock are one set of values.
	l, err := lock.Create(lock.Options{})
	if err != nil {
		t.Fatalf("Create(Options{}) err = %v, want nil", err)
	}
	if err := l.Destroy(); err != nil {
		t.Fatalf("Destroy() = %v, want nil", err)
	}
	_, err = l.Lock(t.Context(), "k", time.Second)
	if !errors.Is(err, lock.ErrDestroyed) {
		t.Errorf(`Lock("k") after Destroy: err = %v, want lock.ErrDestroyed`, err)
	}
	var le *lock.Error
	if !errors.As(err, &le) {
		t.Fatalf(`Lock("k") after Destroy: err = %v, want a *lock.Error`, err)
	}
	if le.Key != "k" {
		t.Errorf(`Lock("k") after Destroy: err.Key = %q, want "k"`, le.Key)
	}
}
