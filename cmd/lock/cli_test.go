package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad flags, arguments and configurations: one line on stderr and the
// documented status, before anything is locked or any master is asked.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badJSON, []byte(`{"type":"redis","connection":{"port":0}}`), 0o644))
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, exitUsage, "missing command"},
		{"unknown command", nil, []string{"lcok"}, exitUsage, `unknown command "lcok"`},
		{"flag before command", nil, []string{"--ttl", "1s", "run"}, exitUsage, "flags go after the command"},
		{"help for unknown", nil, []string{"help", "nope"}, exitUsage, `unknown command "nope"`},
		{"run: no key", nil, []string{"run"}, exitUsage, "missing KEY"},
		{"run: no --", nil, []string{"run", "k", "echo"}, exitUsage, `want -- after KEY "k", got "echo"`},
		{"run: flag after key", nil, []string{"run", "k", "--ttl", "1s", "--", "true"}, exitUsage, "flags go before KEY"},
		{"run: no command", nil, []string{"run", "k", "--"}, exitUsage, "missing COMMAND"},
		{"run: unknown flag", nil, []string{"run", "--tll", "1s", "k", "--", "true"}, exitUsage, "flag provided but not defined: -tll"},
		{"run: bad duration", nil, []string{"run", "--ttl", "soon", "k", "--", "true"}, exitUsage, `invalid value "soon" for flag -ttl`},
		{"run: ttl 0", nil, []string{"run", "--ttl", "0", "k", "--", "true"}, exitUsage, "--ttl 0s must be positive"},
		{"run: ttl under 10ms", nil, []string{"run", "--ttl", "10us", "k", "--", "true"}, exitUsage, "--ttl 10µs must be at least 10ms"},
		{"run: ttl under drift", []string{`LOCK_CONFIG={"type":"redis","connection":{},"lockOptions":{"driftFactor":0.9}}`}, []string{"run", "--ttl", "15ms", "k", "--", "true"}, exitUsage, "larger than the clock drift allowance"},
		{"run: wait and no-wait", nil, []string{"run", "--wait", "1s", "--no-wait", "k", "--", "true"}, exitUsage, "either --wait or --no-wait"},
		{"run: negative grace", nil, []string{"run", "--grace", "-1s", "k", "--", "true"}, exitUsage, "--grace"},
		{"servers: no port", nil, []string{"status", "--servers", "127.0.0.1"}, exitUsage, `--servers: "127.0.0.1": want host:port`},
		{"servers: bad port", nil, []string{"status", "--servers", "127.0.0.1:0"}, exitUsage, "not a TCP port"},
		{"servers and config", nil, []string{"status", "--servers", "127.0.0.1:1", "--config", badJSON}, exitUsage, "either --servers or --config"},
		{"status: argument", nil, []string{"status", "k"}, exitUsage, `unexpected argument "k"`},
		{"status: timeout", nil, []string{"status", "--timeout", "0"}, exitUsage, "--timeout 0s must be positive"},
		{"bench: workers", nil, []string{"bench", "--workers", "0"}, exitUsage, "--workers 0"},
		{"bench: hold past ttl", nil, []string{"bench", "--hold", "2s", "--ttl", "1s"}, exitUsage, "--hold 2s must be in [0, --ttl 1s)"},
		{"bench: count", nil, []string{"bench", "--count", "0"}, exitUsage, "--count 0"},
		{"LOCK_CONFIG: unknown type", []string{"LOCK_CONFIG={\"type\":\"Redis\"}"}, []string{"status"}, exitConfig, `LOCK_CONFIG: config: type: unknown type "Redis"`},
		{"LOCK_CONFIG: not JSON", []string{"LOCK_CONFIG={type:redis}"}, []string{"run", "k", "--", "true"}, exitConfig, "LOCK_CONFIG: config: invalid JSON"},
		{"LOCK_CONFIG: typo", []string{`LOCK_CONFIG={"type":"redis","connection":{},"lockOptions":{"retrycount":1}}`}, []string{"bench"}, exitConfig, `did you mean "retryCount"`},
		{"--config: missing file", nil, []string{"status", "--config", filepath.Join(dir, "none.json")}, exitConfig, "no such file"},
		{"--config: bad port", nil, []string{"run", "--config", badJSON, "k", "--", "true"}, exitConfig, "bad.json: config: connection.port: 0 is not a TCP port"},
		{"run: command not found", nil, []string{"run", "k", "--", "./no-such-command"}, exitNotFound, "no-such-command: command not found"},
		{"run: not executable", nil, []string{"run", "k", "--", badJSON}, exitCannotExec, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, tc.args...)
			oneLineError(t, r, tc.code, tc.want)
			assert.Empty(t, r.stdout)
			for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				assert.True(t, strings.HasPrefix(l, "lock: "), "every line on stderr is the tool's: %q", l)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"lock run [flags] KEY -- COMMAND", "lock status", "lock bench", "Exit statuses:", "LOCK_CONFIG"}},
		{[]string{"help"}, []string{"lock run [flags] KEY -- COMMAND"}},
		{[]string{"-h"}, []string{"lock run [flags] KEY -- COMMAND"}},
		{[]string{"run", "--help"}, []string{"--no-wait", "--wait DURATION", "--grace DURATION", "LOCK_FENCE", "lock run --no-wait nightly-report -- ./report.sh", "76 "}},
		{[]string{"help", "run"}, []string{"--no-wait"}},
		{[]string{"status", "-h"}, []string{"--key KEY", "--json", "--timeout DURATION", "--servers HOST:PORT,..."}},
		{[]string{"bench", "--help"}, []string{"--workers N", "--keys K", "--duration DURATION", "--hold DURATION", "(default 5s)"}},
	} {
		r := run(t, nil, tc.args...)
		assert.Equal(t, 0, r.code, "lock %v: %s", tc.args, r.stderr)
		assert.Empty(t, r.stderr, "lock %v", tc.args)
		for _, w := range tc.want {
			assert.Contains(t, r.stdout, w, "lock %v", tc.args)
		}
	}
}

// With nothing configured, run works on the in-memory lock, warns that it
// excludes nothing outside the process, gives the command its environment
// and passes its status on.
func TestRunInMemory(t *testing.T) {
	t.Setenv("LOCK_FENCE", "99") // as from an outer lock run: must not leak in
	r := run(t, nil, "run", "--namespace", "jobs", "k", "--", "sh", "-c", `echo "key=$LOCK_KEY value=$LOCK_VALUE fence=${LOCK_FENCE-none}"; exit 3`)
	assert.Equal(t, 3, r.code, "the command's status; stderr: %s", r.stderr)
	assert.Regexp(t, `^key=jobs:k value=[0-9A-Za-z]{10,} fence=none\n$`, r.stdout)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr: %q", r.stderr)
	assert.Contains(t, r.stderr, "lock: warning: no --servers, --config or LOCK_CONFIG")

	// A command killed by a signal: 128+N, as shells report it.
	r = run(t, nil, "run", "k", "--", "sh", "-c", "kill -TERM $$")
	assert.Equal(t, 128+15, r.code, "stderr: %s", r.stderr)

	// The in-memory config from JSON works the same.
	r = run(t, []string{`LOCK_CONFIG={"type":"inMemory","namespace":"ns"}`}, "run", "k", "--", "sh", "-c", `echo "$LOCK_KEY"`)
	assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, "ns:k\n", r.stdout)
}

func TestStatusInMemory(t *testing.T) {
	r := run(t, nil, "status")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"), "one line: %q", r.stdout)
	assert.Contains(t, r.stdout, "in-memory")

	r = run(t, nil, "status", "--json")
	assert.Equal(t, 0, r.code, r.stderr)
	rep := decode[map[string]any](t, r.stdout)
	assert.Equal(t, "inMemory", rep["backend"])
	assert.Empty(t, rep["masters"])
}
