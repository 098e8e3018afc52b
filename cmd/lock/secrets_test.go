package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

// secret is the one password every configuration below carries.
const secret = "TopSecretPW"

// leaks reports whether s shows the secret, as is or as fmt's %x, %X or
// % x would print it.
func leaks(s string) bool {
	h := hex.EncodeToString([]byte(secret))
	spaced := strings.TrimSpace(fmt.Sprintf("% x", secret))
	for _, form := range []string{secret, h, strings.ToUpper(h), spaced, strings.ToUpper(spaced)} {
		if strings.Contains(s, form) {
			return true
		}
	}
	return false
}

// secretConfigs are malformed and valid configurations carrying the secret
// in a url's user info or in a password field. conn is a connection's JSON
// (put in a one-master "redis" config) and go the same connection built in
// Go; whole is a complete configuration instead. Valid ones point at
// 127.0.0.1:1, where nothing listens.
var secretConfigs = []struct {
	name   string
	conn   string            // a connection object, or ""
	goConn config.Connection // the same in Go, when conn is set
	whole  string            // a whole configuration, when conn is ""
	valid  bool
}{
	{name: "url: bad port", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:99999"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:99999"}},
	{name: "url: non-numeric db", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:6379/abc"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:6379/abc"}},
	{name: "url: query", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:6379/0?db=1"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:6379/0?db=1"}},
	{name: "url: password in the query", conn: `{"url":"redis://127.0.0.1:6379/0?password=TopSecretPW"}`, goConn: config.Connection{URL: "redis://127.0.0.1:6379/0?password=TopSecretPW"}},
	{name: "url: fragment", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:6379#x"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:6379#x"}},
	{name: "url: wrong scheme", conn: `{"url":"http://lockuser:TopSecretPW@127.0.0.1:6379"}`, goConn: config.Connection{URL: "http://lockuser:TopSecretPW@127.0.0.1:6379"}},
	{name: "url: empty host", conn: `{"url":"redis://lockuser:TopSecretPW@:6379"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@:6379"}},
	{name: "url: unparsable host", conn: `{"url":"redis://lockuser:TopSecretPW@[127.0.0.1:6379"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@[127.0.0.1:6379"}},
	{name: "url: unparsable port", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:port"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:port"}},
	{name: "url: bad escape", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:6379/%zz"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:6379/%zz"}},
	{name: "url: control character", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:6379/\u007f"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:6379/\x7f"}},
	{name: "url: unescaped slash in the password", conn: `{"url":"redis://lockuser:TopSecretPW/x@127.0.0.1:6379"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW/x@127.0.0.1:6379"}},
	{name: "url: unescaped slash, numeric", conn: `{"url":"redis://lockuser:1/TopSecretPW@127.0.0.1:6379"}`, goConn: config.Connection{URL: "redis://lockuser:1/TopSecretPW@127.0.0.1:6379"}},
	{name: "url: lone user info is a password", conn: `{"url":"redis://TopSecretPW@127.0.0.1:99999"}`, goConn: config.Connection{URL: "redis://TopSecretPW@127.0.0.1:99999"}},
	{name: "url: opaque", conn: `{"url":"redis:lockuser:TopSecretPW@127.0.0.1"}`, goConn: config.Connection{URL: "redis:lockuser:TopSecretPW@127.0.0.1"}},
	{name: "url and password", conn: `{"url":"redis://127.0.0.1:1","password":"TopSecretPW"}`, goConn: config.Connection{URL: "redis://127.0.0.1:1", Password: "TopSecretPW"}},
	{name: "password: bad port", conn: `{"host":"127.0.0.1","port":0,"password":"TopSecretPW"}`, goConn: config.Connection{Host: "127.0.0.1", Password: "TopSecretPW"}},
	{name: "password: bad db", conn: `{"host":"127.0.0.1","port":1,"db":-1,"password":"TopSecretPW"}`, goConn: config.Connection{Host: "127.0.0.1", Port: 1, DB: -1, Password: "TopSecretPW"}},
	{name: "password: bad host", conn: `{"host":"a b","port":1,"password":"TopSecretPW"}`, goConn: config.Connection{Host: "a b", Port: 1, Password: "TopSecretPW"}},
	{name: "password: wrong type beside", whole: `{"type":"redis","connection":{"password":"TopSecretPW","port":"1"}}`},
	{name: "password: unknown field beside", whole: `{"type":"redis","connection":{"password":"TopSecretPW","hots":"x"}}`},
	{name: "password: not JSON", whole: `{"type":"redis","connection":{"password":"TopSecretPW"},}`},
	{name: "password: in-memory", whole: `{"type":"inMemory","connection":{"password":"TopSecretPW"}}`},
	{name: "tls beside a redis:// url", conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:1","tls":{"servername":"redis.test"}}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:1", TLS: &config.TLS{ServerName: "redis.test"}}},
	{name: "tls: caFile missing", conn: `{"url":"rediss://lockuser:TopSecretPW@127.0.0.1:1","tls":{"caFile":"/nonexistent/ca.pem"}}`, goConn: config.Connection{URL: "rediss://lockuser:TopSecretPW@127.0.0.1:1", TLS: &config.TLS{CAFile: "/nonexistent/ca.pem"}}},
	{name: "tls: a key alone", conn: `{"host":"127.0.0.1","port":1,"password":"TopSecretPW","tls":{"key":"-----BEGIN PRIVATE KEY-----\nTopSecretPW=\n-----END PRIVATE KEY-----\n"}}`, goConn: config.Connection{Host: "127.0.0.1", Port: 1, Password: "TopSecretPW", TLS: &config.TLS{Key: "-----BEGIN PRIVATE KEY-----\nTopSecretPW=\n-----END PRIVATE KEY-----\n"}}},
	{name: "tls: unknown field", whole: `{"type":"redis","connection":{"password":"TopSecretPW","tls":{"passphrase":"TopSecretPW"}}}`},
	{name: "tls: wrong type", whole: `{"type":"redis","connection":{"password":"TopSecretPW","tls":{"key":["TopSecretPW"]}}}`},
	{name: "lockConfig string: bad url", whole: `{"lockConfig":"{\"type\":\"redis\",\"connection\":{\"url\":\"redis://u:TopSecretPW@h:0\"}}"}`},

	{name: "valid url", valid: true, conn: `{"url":"redis://lockuser:TopSecretPW@127.0.0.1:1/2"}`, goConn: config.Connection{URL: "redis://lockuser:TopSecretPW@127.0.0.1:1/2"}},
	{name: "valid url, lone user info", valid: true, conn: `{"url":"redis://TopSecretPW@127.0.0.1:1"}`, goConn: config.Connection{URL: "redis://TopSecretPW@127.0.0.1:1"}},
	{name: "valid url, empty user", valid: true, conn: `{"url":"redis://:TopSecretPW@127.0.0.1:1"}`, goConn: config.Connection{URL: "redis://:TopSecretPW@127.0.0.1:1"}},
	{name: "valid rediss url", valid: true, conn: `{"url":"rediss://lockuser:TopSecretPW@127.0.0.1:1"}`, goConn: config.Connection{URL: "rediss://lockuser:TopSecretPW@127.0.0.1:1"}},
	{name: "valid rediss url with tls", valid: true, conn: `{"url":"rediss://lockuser:TopSecretPW@127.0.0.1:1","tls":{"servername":"redis.test","rejectUnauthorized":false}}`, goConn: config.Connection{URL: "rediss://lockuser:TopSecretPW@127.0.0.1:1", TLS: &config.TLS{ServerName: "redis.test", InsecureSkipVerify: true}}},
	{name: "valid password with tls", valid: true, conn: `{"host":"127.0.0.1","port":1,"password":"TopSecretPW","tls":true}`, goConn: config.Connection{Host: "127.0.0.1", Port: 1, Password: "TopSecretPW", TLS: &config.TLS{}}},
	{name: "valid password", valid: true, conn: `{"host":"127.0.0.1","port":1,"username":"lockuser","password":"TopSecretPW","db":3}`, goConn: config.Connection{Host: "127.0.0.1", Port: 1, Username: "lockuser", Password: "TopSecretPW", DB: 3}},
}

// secretJSON is the row's whole configuration; fast to fail on 127.0.0.1:1.
func secretJSON(conn, whole string) string {
	if conn == "" {
		return whole
	}
	return `{"type":"redis","connections":[` + conn + `],"lockOptions":{"retryCount":0,"nodeTimeout":250}}`
}

// TestSecretsNeverShown feeds every configuration above through every path
// that shows a configuration or an error about one: config.Parse,
// Config.Validate, lock.Create (Go-built and parsed) and lock.FromEnv with
// the Lock errors that follow and lock.SlogObserver's log of them, fmt's
// verbs, log/slog and encoding/json on Config and Connection, and the three
// subcommands through LOCK_CONFIG and --config. None may show the
// password.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range secretConfigs {
		t.Run(tc.name, func(t *testing.T) {
			js := secretJSON(tc.conn, tc.whole)
			check := func(where, out string) {
				t.Helper()
				if leaks(out) {
					t.Errorf("%s shows the password:\n%s", where, out)
				}
			}

			// config.Parse, and the parsed configuration shown every way.
			cfg, err := config.Parse([]byte(js))
			switch {
			case tc.valid && err != nil:
				t.Fatalf("Parse(%q) err = %v, want nil", js, err)
			case !tc.valid && err == nil:
				t.Fatalf("Parse(%q) err = nil, want an error", js)
			case err != nil:
				check("Parse's error", err.Error())
			default:
				showEveryWay(t, "the parsed Config", cfg, check)
			}

			// The same built in Go: Validate, and shown every way.
			var goCfg *config.Config
			if tc.conn != "" {
				lo := config.DefaultLockOptions()
				lo.RetryCount, lo.NodeTimeout = 0, 250*time.Millisecond
				goCfg = &config.Config{Type: config.Redis, Connections: []config.Connection{tc.goConn}, LockOptions: lo}
				err := goCfg.Validate()
				if (err == nil) != tc.valid {
					t.Fatalf("Validate(%+v) err = %v, want an error: %v", tc.goConn, err, !tc.valid)
				}
				if err != nil {
					check("Validate's error", err.Error())
				}
				showEveryWay(t, "the Go-built Config", goCfg, check)
			}

			// lock.Create, lock.FromEnv, a Lock's errors and their log.
			var log bytes.Buffer
			obs := lock.SlogObserver(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
			try := func(where string, l lock.Locker, err error) {
				t.Helper()
				if err != nil {
					if tc.valid {
						t.Errorf("%s err = %v, want nil", where, err)
					}
					check(where+"'s error", err.Error())
					return
				}
				defer l.Destroy()
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				lk, err := l.Lock(ctx, "k", time.Second)
				if err == nil {
					_ = lk.Unlock(ctx)
					t.Fatalf("%s: Lock on 127.0.0.1:1 succeeded", where)
				}
				check(where+": Lock's error", err.Error())
				check(where+": Lock's error, %+v", fmt.Sprintf("%+v", err))
			}
			if goCfg != nil {
				l, err := lock.Create(lock.Options{LockConfig: goCfg, Observer: obs})
				try("Create(Go-built)", l, err)
			}
			if cfg != nil {
				l, err := lock.Create(lock.Options{LockConfig: cfg, Observer: obs})
				try("Create(parsed)", l, err)
			}
			t.Setenv(lock.EnvVar, js)
			l, err := lock.FromEnv("")
			try("FromEnv", l, err)
			if tc.valid && log.Len() == 0 {
				t.Errorf("SlogObserver logged nothing")
			}
			check("SlogObserver's log", log.String())

			// The tool, through LOCK_CONFIG and --config.
			file := filepath.Join(dir, fmt.Sprintf("config%d.json", i))
			if err := os.WriteFile(file, []byte(js), 0o600); err != nil {
				t.Fatal(err)
			}
			wantCode := exitConfig
			if tc.valid {
				wantCode = exitUnavailable
			}
			for _, args := range [][]string{
				{"status", "--timeout", "500ms"},
				{"bench", "--duration", "200ms", "--workers", "1", "--keys", "1"},
				{"run", "--no-wait", "k", "--", "true"},
			} {
				for _, src := range []struct {
					env  []string
					args []string
				}{
					{[]string{lock.EnvVar + "=" + js}, args},
					{nil, append([]string{args[0], "--config", file}, args[1:]...)},
				} {
					r := run(t, src.env, src.args...)
					what := fmt.Sprintf("lock %s (env %q)", strings.Join(src.args, " "), src.env)
					if r.code != wantCode || r.stderr == "" {
						t.Errorf("%s: exit status %d, stderr %q; want %d and a message", what, r.code, r.stderr, wantCode)
					}
					check(what+": stdout", r.stdout)
					check(what+": stderr", r.stderr)
				}
			}
		})
	}
}

// showEveryWay formats cfg and its connections with every fmt verb, logs
// them with log/slog's text and JSON handlers and marshals them to JSON,
// and checks each output.
func showEveryWay(t *testing.T, what string, cfg *config.Config, check func(where, out string)) {
	t.Helper()
	values := map[string]any{"Config": *cfg, "*Config": cfg, "Connections": cfg.Connections}
	for i, c := range cfg.Connections {
		values[fmt.Sprintf("Connections[%d]", i)] = c
		values[fmt.Sprintf("&Connections[%d]", i)] = &cfg.Connections[i]
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%U", "%20.3v", "%-s"} {
			check(fmt.Sprintf("%s: %s with %s", what, name, verb), fmt.Sprintf(verb, v))
		}
		check(fmt.Sprintf("%s: fmt.Sprint(%s)", what, name), fmt.Sprint(v))
		check(fmt.Sprintf("%s: fmt.Sprintln(%s)", what, name), fmt.Sprintln(v))
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var b bytes.Buffer
			slog.New(h(&b)).Info("config", "value", v)
			check(fmt.Sprintf("%s: slog of %s", what, name), b.String())
		}
		if js, err := json.Marshal(v); err == nil {
			check(fmt.Sprintf("%s: json.Marshal(%s)", what, name), string(js))
		}
	}
}

// TestRunPassConfig: the command does not get LOCK_CONFIG, which may hold
// passwords, unless --pass-config asks for it.
func TestRunPassConfig(t *testing.T) {
	const cfg = `{"type":"inMemory","namespace":"ns"}`
	env := []string{lock.EnvVar + "=" + cfg}
	show := []string{"--", "sh", "-c", `echo "${LOCK_CONFIG-unset}"`}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "unset\n"},
		{[]string{"--pass-config"}, cfg + "\n"},
	} {
		args := append(append([]string{"run"}, tc.flags...), append([]string{"k"}, show...)...)
		r := run(t, env, args...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("lock %s: status %d, stdout %q; want 0 and %q (stderr %q)", strings.Join(args, " "), r.code, r.stdout, tc.want, r.stderr)
		}
	}
	// --config FILE: LOCK_CONFIG, unused, still is not passed on.
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, env, append([]string{"run", "--config", file, "k"}, show...)...)
	if r.code != 0 || r.stdout != "unset\n" {
		t.Errorf("lock run --config: status %d, stdout %q; want 0 and %q", r.code, r.stdout, "unset\n")
	}
}
