package lock_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	lock "github.com/leverege/lock"
)

// TestSlogObserver: trouble is logged at Warn, the rest at Debug.
func TestSlogObserver(t *testing.T) {
	var buf bytes.Buffer
	obs := lock.SlogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	obs.Observe(lock.Event{Kind: lock.KindLock, Key: "ok", Attempts: 1})
	obs.Observe(lock.Event{Kind: lock.KindLock, Key: "k", Err: lock.ErrNotAcquired, Attempts: 3})
	obs.Observe(lock.Event{Kind: lock.KindNode, Node: 1, Addr: "10.0.0.2:6379", Op: "acquire",
		Err: errors.Join(lock.ErrUnreachable, errors.New("no answer within 50ms"))})
	out := buf.String()
	if strings.Contains(out, "key=ok") {
		t.Errorf("log at Info =\n%s\nwant no line with key=ok: a success logged at Info", out)
	}
	for _, want := range []string{`level=WARN msg="lock lock" kind=lock`, "attempts=3", `addr=10.0.0.2:6379 op=acquire`} {
		if !strings.Contains(out, want) {
			t.Errorf("log at Info =\n%s\nwant it to contain %q", out, want)
		}
	}
}
