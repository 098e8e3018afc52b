package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Bad flags, arguments and configurations: one line on stderr and the
// documented status, before anything is locked or any master is asked.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badJSON, []byte(`{"type":"redis","connection":{"port":0}}`), 0o644); err != nil {
		t.Fatalf("WriteFile(%s): %v", badJSON, err)
	}
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
		{"servers: a URL with a password", nil, []string{"status", "--servers", "127.0.0.1:1,redis://:S3cr3t@10.0.0.1:6379"}, exitUsage, "--servers: item 2 is not host:port"},
		{"servers: credentials", nil, []string{"run", "--servers", "app:S3cr3t@10.0.0.1:6379", "k", "--", "true"}, exitUsage, "--servers: item 1 is not host:port"},
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
			if strings.Contains(r.stderr, "S3cr3t") {
				t.Errorf("lock %q: stderr = %q shows the password", tc.args, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("lock %q: stdout = %q, want nothing", tc.args, r.stdout)
			}
			for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				if !strings.HasPrefix(l, "lock: ") {
					t.Errorf("lock %q: stderr line %q, want it to start with \"lock: \": every line on stderr is the tool's", tc.args, l)
				}
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
		wantExit(t, r, 0, "")
		if r.stderr != "" {
			t.Errorf("lock %q: stderr = %q, want nothing", tc.args, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("lock %q: stdout =\n%s\nwant it to contain %q", tc.args, r.stdout, w)
			}
		}
	}
}

// With nothing configured, run works on the in-memory lock, warns that it
// excludes nothing outside the process, gives the command its environment
// and passes its status on.
func TestRunInMemory(t *testing.T) {
	t.Setenv("LOCK_FENCE", "99") // as from an outer lock run: must not leak in
	r := run(t, nil, "run", "--namespace", "jobs", "k", "--", "sh", "-c", `echo "key=$LOCK_KEY value=$LOCK_VALUE fence=${LOCK_FENCE-none}"; exit 3`)
	wantExit(t, r, 3, "the command's status")
	if want := regexp.MustCompile(`^key=jobs:k value=[0-9A-Za-z]{10,} fence=none\n$`); !want.MatchString(r.stdout) {
		t.Errorf("lock %q: stdout = %q, want it to match %s", r.args, r.stdout, want)
	}
	if n := strings.Count(r.stderr, "\n"); n != 1 {
		t.Errorf("lock %q: %d lines on stderr, want 1 (the warning); stderr: %q", r.args, n, r.stderr)
	}
	if want := "lock: warning: no --servers, --config or LOCK_CONFIG"; !strings.Contains(r.stderr, want) {
		t.Errorf("lock %q: stderr = %q, want it to contain %q", r.args, r.stderr, want)
	}

	// A command killed by a signal: 128+N, as shells report it.
	r = run(t, nil, "run", "k", "--", "sh", "-c", "kill -TERM $$")
	wantExit(t, r, 128+15, "128+SIGTERM, for a command killed by SIGTERM")

	// The in-memory config from JSON works the same.
	r = run(t, []string{`LOCK_CONFIG={"type":"inMemory","namespace":"ns"}`}, "run", "k", "--", "sh", "-c", `echo "$LOCK_KEY"`)
	wantExit(t, r, 0, "")
	if r.stdout != "ns:k\n" {
		t.Errorf("lock %q with an inMemory LOCK_CONFIG of namespace ns: stdout = %q, want %q", r.args, r.stdout, "ns:k\n")
	}
}

func TestStatusInMemory(t *testing.T) {
	r := run(t, nil, "status")
	wantExit(t, r, 0, "")
	if n := strings.Count(r.stdout, "\n"); n != 1 {
		t.Errorf("lock status: %d lines on stdout, want one: %q", n, r.stdout)
	}
	if !strings.Contains(r.stdout, "in-memory") {
		t.Errorf("lock status: stdout = %q, want it to say in-memory", r.stdout)
	}

	r = run(t, nil, "status", "--json")
	wantExit(t, r, 0, "")
	rep := decode[map[string]any](t, r.stdout)
	if got := rep["backend"]; got != "inMemory" {
		t.Errorf("lock status --json: backend = %#v, want \"inMemory\"", got)
	}
	if got := rep["masters"]; !emptyJSON(got) {
		t.Errorf("lock status --json: masters = %#v, want it empty", got)
	}
}

// emptyJSON reports whether v, a value decoded from JSON into an any, is
// empty: absent or null, false, 0, "", [] or {}.
func emptyJSON(v any) bool {
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return v == nil || reflect.ValueOf(v).IsZero()
}
