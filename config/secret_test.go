package config_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/leverege/lock/config"
)

// pw is the password the tests below must never see shown.
const pw = "TopSecretPW"

func TestURLErrorsRedacted(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://lockuser:TopSecretPW@127.0.0.1:99999", `url: "redis://lockuser:xxxxx@127.0.0.1:99999": the port is not a TCP port (1-65535)`},
		{"redis://lockuser:TopSecretPW@127.0.0.1/abc", `url: "redis://lockuser:xxxxx@127.0.0.1/abc": the database (the path) is not a number`},
		{"redis://lockuser:TopSecretPW@127.0.0.1/-1", `the database (the path) is not a number`},
		{"redis://lockuser:TopSecretPW@127.0.0.1/99999999999999999999", `the database (the path) is out of range`},
		{"redis://lockuser:TopSecretPW@127.0.0.1/0?db=1", `url: "redis://lockuser:xxxxx@127.0.0.1/0?…": a query or fragment (after ? or #) is not supported`},
		{"redis://127.0.0.1/0?password=TopSecretPW", `url: "redis://127.0.0.1/0?…": a query`},
		{"redis://lockuser:TopSecretPW@127.0.0.1#TopSecretPW", `url: "redis://lockuser:xxxxx@127.0.0.1?…": a query`},
		{"http://lockuser:TopSecretPW@127.0.0.1", `url: "http://lockuser:xxxxx@127.0.0.1": the scheme must be redis or rediss`},
		{"redis://lockuser:TopSecretPW@:6379", `url: "redis://lockuser:xxxxx@:6379": no host`},
		{"redis:lockuser:TopSecretPW@127.0.0.1", `url: "redis:xxxxx@127.0.0.1": no host: want redis://host`},
		{"redis://lockuser:TopSecretPW@[127.0.0.1", `url: "redis://lockuser:xxxxx@[127.0.0.1": not a URL: missing ']' in host`},
		{"redis://lockuser:TopSecretPW@127.0.0.1:port", `not a URL: invalid port ":port" after host`},
		{"redis://lockuser:TopSecretPW/x@127.0.0.1", `url: "redis://lockuser:xxxxx@127.0.0.1": not a URL: the user info (before @) is not valid`},
		{"redis://lockuser:TopSecret%PW@127.0.0.1", `url: "redis://lockuser:xxxxx@127.0.0.1": not a URL: the user info (before @) is not valid`},
		{"redis://lockuser:1/TopSecretPW@127.0.0.1", `url: "redis://lockuser:xxxxx@127.0.0.1": the database (the path) is not a number`},
		{"redis://TopSecretPW@127.0.0.1:0", `url: "redis://xxxxx@127.0.0.1:0": the port`},
		{"redis://a@b:TopSecretPW@127.0.0.1:0", `url: "redis://a@b:xxxxx@127.0.0.1:0": the port`},
		{"redis://x/y:TopSecretPW@127.0.0.1:0", `url: "redis://xxxxx@127.0.0.1:0": the database (the path) is not a number`},
	} {
		c := config.Connection{URL: tc.url}
		cfg := &config.Config{Type: config.Redis, Connections: []config.Connection{c}, LockOptions: config.DefaultLockOptions()}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), pw) {
			t.Errorf("Validate(url %q) err = %v, want it to contain %q and not the password", tc.url, err, tc.want)
		}
		js := fmt.Sprintf(`{"type":"redis","connection":{"url":%q}}`, tc.url)
		if _, err := config.Parse([]byte(js)); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), pw) {
			t.Errorf("Parse(%s) err = %v, want it to contain %q and not the password", js, err, tc.want)
		}
		// Dial checks a connection it is given unchecked the same way.
		if conn, err := c.Dial(t.Context(), time.Second); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), pw) {
			if conn != nil {
				conn.Close()
			}
			t.Errorf("Connection{URL: %q}.Dial() err = %v, want it to contain %q and not the password", tc.url, err, tc.want)
		}
		if got := c.Addr(); strings.Contains(got, "TopSecret") {
			t.Errorf("Connection{URL: %q}.Addr() = %q, shows the password", tc.url, got)
		}
	}
}

// TestShownRedacted: every way of showing a Connection or a Config shows
// xxxxx for the password, and shows the rest.
func TestShownRedacted(t *testing.T) {
	cfg := config.Config{Type: config.Redis, LockOptions: config.DefaultLockOptions(), Connections: []config.Connection{
		{URL: "rediss://lockuser:TopSecretPW@10.0.0.1:6380/2"},
		{URL: "redis://TopSecretPW@10.0.0.2"},
		{Host: "10.0.0.3", Port: 6379, Username: "lockuser", Password: pw, DB: 1},
		{Host: "10.0.0.4", Port: 6380, TLS: &config.TLS{CA: "ca PEM", Cert: "cert PEM", Key: "-----BEGIN PRIVATE KEY-----\n" + pw + "\n-----END PRIVATE KEY-----\n", ServerName: "redis.test"}},
		{URL: "rediss://:TopSecretPW@10.0.0.5", TLS: &config.TLS{KeyFile: "/etc/key.pem", InsecureSkipVerify: true, Config: &tls.Config{}}},
	}}
	values := map[string]any{"Config": cfg, "*Config": &cfg, "[]Connection": cfg.Connections}
	for i, c := range cfg.Connections {
		values[fmt.Sprintf("Connections[%d]", i)] = c
		values[fmt.Sprintf("&Connections[%d]", i)] = &cfg.Connections[i]
	}
	for name, v := range values {
		outs := map[string]string{}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%U", "%8.3v", "%-s"} {
			outs[verb] = fmt.Sprintf(verb, v)
		}
		outs["Sprint"] = fmt.Sprint(v)
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
		outs["slog text"], outs["slog JSON"] = text.String(), js.String()
		b, err := json.Marshal(v)
		if err != nil {
			t.Errorf("json.Marshal(%s) err = %v", name, err)
		}
		outs["json.Marshal"] = string(b)
		hexPW := fmt.Sprintf("%x", pw)
		for how, out := range outs {
			if strings.Contains(out, pw) || strings.Contains(strings.ToLower(out), hexPW) || strings.Contains(strings.ReplaceAll(strings.ToLower(out), " ", ""), hexPW) {
				t.Errorf("%s of %s shows the password: %s", how, name, out)
			}
		}
		if !strings.Contains(outs["%v"], "xxxxx") || !strings.Contains(outs["slog JSON"], "xxxxx") || !strings.Contains(outs["json.Marshal"], "xxxxx") {
			t.Errorf("%s shown as %v / %s / %s, want xxxxx for the password", name, outs["%v"], outs["slog JSON"], outs["json.Marshal"])
		}
	}
	for _, tc := range []struct {
		format string
		v      any
		want   string
	}{
		{"%v", cfg.Connections[0], "{ 0   0 <nil> rediss://lockuser:xxxxx@10.0.0.1:6380/2}"},
		{"%+v", cfg.Connections[2], "{Host:10.0.0.3 Port:6379 Username:lockuser Password:xxxxx DB:1 TLS:<nil> URL:}"},
		{"%#v", cfg.Connections[1], `config.Connection{Host:"", Port:0, Username:"", Password:"", DB:0, TLS:<nil>, URL:"redis://xxxxx@10.0.0.2"}`},
		{"%s", cfg.Connections[2], "{10.0.0.3 %!s(int=6379) lockuser xxxxx %!s(int=1) <nil> }"},
		{"%s", cfg.Connections[2].String(), "{10.0.0.3 6379 lockuser xxxxx 1 <nil> }"},
		{"%+v", cfg.Connections[3], "{Host:10.0.0.4 Port:6380 Username: Password: DB:0 TLS:{CA:ca PEM Cert:cert PEM Key:xxxxx CAFile: CertFile: KeyFile: ServerName:redis.test InsecureSkipVerify:false Config:<nil>} URL:}"},
		{"%#v", *cfg.Connections[3].TLS, `config.TLS{CA:"ca PEM", Cert:"cert PEM", Key:"xxxxx", CAFile:"", CertFile:"", KeyFile:"", ServerName:"redis.test", InsecureSkipVerify:false, Config:(*tls.Config)(nil)}`},
	} {
		if got := fmt.Sprintf(tc.format, tc.v); got != tc.want {
			t.Errorf("Sprintf(%q, %s) = %s, want %s", tc.format, tc.v, got, tc.want)
		}
	}
	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "time" {
			return slog.Attr{}
		}
		return a
	}})).Info("m", "config", cfg)
	const want = `{"level":"INFO","msg":"m","config":{"type":"redis","connections":{` +
		`"0":{"url":"rediss://lockuser:xxxxx@10.0.0.1:6380/2"},"1":{"url":"redis://xxxxx@10.0.0.2"},` +
		`"2":{"host":"10.0.0.3","port":6379,"username":"lockuser","password":"xxxxx","db":1},` +
		`"3":{"host":"10.0.0.4","port":6380,"tls":{"ca":"ca PEM","cert":"cert PEM","key":"xxxxx","servername":"redis.test"}},` +
		`"4":{"url":"rediss://:xxxxx@10.0.0.5","tls":{"keyFile":"/etc/key.pem","rejectUnauthorized":false,"config":"*tls.Config"}}},` +
		`"lockOptions":{"driftFactor":0.01,"retryCount":10,"retryDelay":200000000,"retryJitter":100000000,"nodeTimeout":50000000,"restartDelay":0,"fencing":false,"replicaAcks":0,"requireNoEviction":false}}}` + "\n"
	if js.String() != want {
		t.Errorf("slog JSON of a Config =\n%s\nwant\n%s", js.String(), want)
	}
}

// TestSecretsInsideAnotherValue: a Config held by a caller's value, printed
// with any verb (%s and %q on a pointer take fmt's field-by-field path),
// shows no password.
func TestSecretsInsideAnotherValue(t *testing.T) {
	cfg, err := config.Parse([]byte(`{"type":"redis","connection":{"url":"redis://app:S3cr3t@10.0.0.1:6379"}}`))
	if err != nil {
		t.Fatal(err)
	}
	type App struct {
		Name string
		Lock *config.Config
	}
	for _, verb := range []string{"%s", "%q", "%v", "%+v", "%#v", "%x"} {
		for _, v := range []any{App{"svc", cfg}, []*config.Config{cfg}, cfg, *cfg} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, "S3cr3t") {
				t.Errorf("%s of %T shows the password: %s", verb, v, out)
			}
		}
	}
}
