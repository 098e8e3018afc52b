package config_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

// validate checks conn the way a Config built in Go is checked.
func validate(conn config.Connection) error {
	cfg := &config.Config{Type: config.Redis, Connections: []config.Connection{conn}, LockOptions: config.DefaultLockOptions()}
	return cfg.Validate()
}

func TestTLSValidate(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(t.TempDir(), "ca.pem")
	// A key that does not parse, holding the password: it must not be shown.
	badKey := "-----BEGIN PRIVATE KEY-----\n" + pw + "=\n-----END PRIVATE KEY-----\n"
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
	badCert := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		name string
		conn config.Connection
		want string // the whole error; "" for none
	}{
		{"nothing: system roots", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{}}, ""},
		{"PEM", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CA: p.caPEM, Cert: p.clientPEM, Key: p.clientKeyPEM, ServerName: "redis.test"}}, ""},
		{"files", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CAFile: p.caFile, CertFile: p.clientFile, KeyFile: p.clientKeyFile}}, ""},
		{"cert as text, key as file", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, KeyFile: p.clientKeyFile}}, ""},
		{"insecure", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{InsecureSkipVerify: true}}, ""},
		{"Config", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Config: &tls.Config{}}}, ""},
		{"beside rediss://", config.Connection{URL: "rediss://:pw@h", TLS: &config.TLS{CA: p.caPEM}}, ""},

		{"beside redis://", config.Connection{URL: "redis://h", TLS: &config.TLS{}},
			"config: connections[0].tls: needs a rediss:// url (a url's scheme says whether to use TLS): use rediss://"},
		{"caFile missing", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CAFile: missing}},
			"config: connections[0].tls.caFile: open " + missing + ": no such file or directory"},
		{"certFile missing", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CertFile: missing, Key: p.clientKeyPEM}},
			"config: connections[0].tls.certFile: open " + missing + ": no such file or directory"},
		{"keyFile missing", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, KeyFile: missing}},
			"config: connections[0].tls.keyFile: open " + missing + ": no such file or directory"},
		{"caFile not a PEM file", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CAFile: "/dev/zero"}},
			"config: connections[0].tls.caFile: /dev/zero: more than 4 MiB, too large for a PEM file"},
		{"ca without a certificate", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CA: p.clientKeyPEM}},
			"config: connections[0].tls.ca: no certificate in the PEM text (want PEM: -----BEGIN CERTIFICATE-----)"},
		{"ca not PEM", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CA: "/etc/ssl/ca.pem"}},
			"config: connections[0].tls.ca: no certificate in the PEM text (want PEM: -----BEGIN CERTIFICATE-----)"},
		{"caFile without a certificate", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CAFile: p.clientKeyFile}},
			"config: connections[0].tls.caFile: no certificate in " + p.clientKeyFile + " (want PEM: -----BEGIN CERTIFICATE-----)"},
		{"ca unparsable", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CA: p.caPEM + badCert}},
			"config: connections[0].tls.ca: certificate 2: x509: malformed certificate"},
		{"cert without a certificate", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientKeyPEM, Key: p.clientKeyPEM}},
			"config: connections[0].tls.cert: no certificate in the PEM text (want PEM: -----BEGIN CERTIFICATE-----)"},
		{"key unparsable", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, Key: badKey}},
			"config: connections[0].tls.key: not a usable private key: tls: failed to parse private key"},
		{"key not PEM", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, Key: pw}},
			"config: connections[0].tls.key: not a usable private key: tls: failed to find any PEM data in key input"},
		{"key encrypted", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, Key: encrypted}},
			"config: connections[0].tls.key: an encrypted private key is not supported: give it decrypted"},
		{"key of another certificate", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, KeyFile: p.otherKeyFile}},
			"config: connections[0].tls.keyFile: not the private key of the client certificate (cert): tls: private key does not match public key"},
		{"cert without key", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CertFile: p.clientFile}},
			"config: connections[0].tls.certFile: a client certificate needs its private key: set key or keyFile too"},
		{"key without cert", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Key: badKey}},
			"config: connections[0].tls.key: a private key needs its client certificate: set cert or certFile too"},
		{"ca and caFile", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{CA: p.caPEM, CAFile: p.caFile}},
			"config: connections[0].tls.ca: give either ca or caFile, not both"},
		{"cert and certFile", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, CertFile: p.clientFile, Key: p.clientKeyPEM}},
			"config: connections[0].tls.cert: give either cert or certFile, not both"},
		{"key and keyFile", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Cert: p.clientPEM, Key: p.clientKeyPEM, KeyFile: p.clientKeyFile}},
			"config: connections[0].tls.key: give either key or keyFile, not both"},
		{"Config and more", config.Connection{Host: "h", Port: 1, TLS: &config.TLS{Config: &tls.Config{}, ServerName: "x", InsecureSkipVerify: true}},
			"config: connections[0].tls: Config is used as given: leave the other fields empty (got servername, rejectUnauthorized)"},
	} {
		err := validate(tc.conn)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: Validate() = %v, want %s", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), pw):
			t.Errorf("%s: Validate() = %v: shows the key", tc.name, err)
		}
		// Dial checks the same before it connects to anything.
		if tc.want != "" {
			want := strings.Replace(tc.want, "connections[0].", "", 1)
			if conn, err := tc.conn.Dial(t.Context(), time.Second); err == nil || err.Error() != want {
				if conn != nil {
					conn.Close()
				}
				t.Errorf("%s: Dial() err = %v, want %s", tc.name, err, want)
			}
		}
	}
}

func TestParseTLS(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(t.TempDir(), "ca.pem")
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	for _, tc := range []struct {
		conn string
		want *config.TLS
	}{
		{`{"tls":true}`, &config.TLS{}},
		{`{"tls":false}`, nil},
		{`{"tls":null}`, nil},
		{`{"tls":{}}`, &config.TLS{}},
		{`{"tls":{"rejectUnauthorized":false}}`, &config.TLS{InsecureSkipVerify: true}},
		{`{"tls":{"rejectUnauthorized":true,"servername":"redis.test"}}`, &config.TLS{ServerName: "redis.test"}},
		{`{"tls":{"ca":` + q(p.caPEM) + `,"cert":` + q(p.clientPEM) + `,"key":` + q(p.clientKeyPEM) + `}}`,
			&config.TLS{CA: p.caPEM, Cert: p.clientPEM, Key: p.clientKeyPEM}},
		{`{"tls":{"caFile":` + q(p.caFile) + `,"certFile":` + q(p.clientFile) + `,"keyFile":` + q(p.clientKeyFile) + `}}`,
			&config.TLS{CAFile: p.caFile, CertFile: p.clientFile, KeyFile: p.clientKeyFile}},
	} {
		js := `{"type":"redis","connection":` + tc.conn + `}`
		cfg, err := config.Parse([]byte(js))
		if err != nil {
			t.Errorf("Parse(%s) err = %v, want nil", js, err)
			continue
		}
		if got := cfg.Connections[0].TLS; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%s) TLS = %+v, want %+v", js, got, tc.want)
		}
	}
	js := `{"type":"redis","connection":{"url":"rediss://:pw@127.0.0.1:6380/1","tls":{"servername":"redis.test"}}}`
	cfg, err := config.Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse(%s) err = %v, want nil", js, err)
	}
	if c := cfg.Connections[0]; c.URL != "rediss://:pw@127.0.0.1:6380/1" || !reflect.DeepEqual(c.TLS, &config.TLS{ServerName: "redis.test"}) {
		t.Errorf("Parse(%s) = %+v, want the url and the tls object", js, c)
	}

	for _, tc := range []struct{ json, want string }{
		{`{"type":"redis","connection":{"tls":"yes"}}`, `config: connection.tls: want true, false or an object, got a string`},
		{`{"type":"redis","connection":{"tls":1}}`, `config: connection.tls: want true, false or an object, got a number`},
		{`{"type":"redis","connection":{"tls":[]}}`, `config: connection.tls: want true, false or an object, got an array`},
		{`{"type":"redis","connection":{"tls":{"CA":"x"}}}`, `config: connection.tls.CA: unknown field: did you mean "ca"?`},
		{`{"type":"redis","connection":{"tls":{"serverName":"x"}}}`, `config: connection.tls.serverName: unknown field: did you mean "servername"?`},
		{`{"type":"redis","connections":[{},{"tls":{"passphrase":"x"}}]}`, `config: connections[1].tls.passphrase: unknown field`},
		{`{"lockConfig":{"type":"redis","connection":{"tls":{"cafile":"x"}}}}`, `config: lockConfig.connection.tls.cafile: unknown field: did you mean "caFile"?`},
		{`{"type":"redis","connection":{"tls":{"ca":5}}}`, `config: connection.tls.ca: want a string, got number`},
		{`{"type":"redis","connection":{"tls":{"rejectUnauthorized":"no"}}}`, `config: connection.tls.rejectUnauthorized: want true or false, got string`},
		{`{"type":"redis","connection":{"url":"redis://h","tls":true}}`, `config: connection.tls: needs a rediss:// url (a url's scheme says whether to use TLS): use rediss://`},
		{`{"type":"redis","connection":{"url":"redis://h","tls":{"servername":"h"}}}`, `config: connection.tls: needs a rediss:// url`},
		{`{"type":"redis","connections":[{},{"tls":{"caFile":` + q(missing) + `}}]}`, `config: connections[1].tls.caFile: open ` + missing + `: no such file or directory`},
		{`{"lockConfig":{"type":"redis","connection":{"tls":{"cert":` + q(p.clientPEM) + `}}}}`, `config: lockConfig.connection.tls.cert: a client certificate needs its private key`},
	} {
		cfg, err := config.Parse([]byte(tc.json))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %+v, %v; want the error %s", tc.json, cfg, err, tc.want)
		}
	}
}

// tlsServers are redis-servers speaking TLS only, with the default
// tls-auth-clients yes: one without a password, one with (so Dial's round
// trip is AUTH there, PING on the first), and a plain one.
type tlsServers struct {
	pki            *pki
	open, locked   *server
	plain          *server
	lockedPassword string
	pool           *x509.CertPool
	clientPair     tls.Certificate
}

func startTLSServers(t *testing.T) *tlsServers {
	t.Helper()
	p := newPKI(t)
	s := &tlsServers{pki: p, lockedPassword: "other-password", pool: x509.NewCertPool()}
	s.pool.AppendCertsFromPEM([]byte(p.caPEM))
	var err error
	if s.clientPair, err = tls.X509KeyPair([]byte(p.clientPEM), []byte(p.clientKeyPEM)); err != nil {
		t.Fatal(err)
	}
	ping := &tls.Config{RootCAs: s.pool, Certificates: []tls.Certificate{s.clientPair}, ServerName: "127.0.0.1"}
	tlsArgs := []string{"--tls-cert-file", p.serverFile, "--tls-key-file", p.serverKeyFile, "--tls-ca-cert-file", p.caFile}
	s.open = startRedis(t, ping, tlsArgs...)
	s.locked = startRedis(t, ping, append(tlsArgs, "--requirepass", s.lockedPassword)...)
	s.plain = startRedis(t, nil)
	return s
}

// dialPing dials c and sends a PING on the connection.
func dialPing(ctx context.Context, c config.Connection) error {
	conn, err := c.Dial(ctx, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = redis.DoContext(conn, ctx, "PING")
	return err
}

func TestTLSDial(t *testing.T) {
	s := startTLSServers(t)
	p := s.pki
	full := &config.TLS{CA: p.caPEM, Cert: p.clientPEM, Key: p.clientKeyPEM}
	files := &config.TLS{CAFile: p.caFile, CertFile: p.clientFile, KeyFile: p.clientKeyFile}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	parsed := func(conn string) config.Connection {
		t.Helper()
		cfg, err := config.Parse([]byte(`{"type":"redis","connection":` + conn + `}`))
		if err != nil {
			t.Fatalf("Parse(%s) err = %v", conn, err)
		}
		return cfg.Connections[0]
	}
	at := func(srv *server, password string, tc *config.TLS) config.Connection {
		return config.Connection{Host: "127.0.0.1", Port: srv.port, Password: password, TLS: tc}
	}
	with := func(f func(*config.TLS)) *config.TLS {
		c := *full
		f(&c)
		return &c
	}
	other, err := tls.X509KeyPair([]byte(p.otherPEM), []byte(p.otherKeyPEM))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("connects", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			conn config.Connection
		}{
			{"ca, cert, key", at(s.open, "", full)},
			{"caFile, certFile, keyFile", at(s.open, "", files)},
			{"servername among the certificate's names", at(s.open, "", with(func(c *config.TLS) { c.ServerName = "redis.test" }))},
			{"rejectUnauthorized false", parsed(fmt.Sprintf(`{"port":%d,"tls":{"rejectUnauthorized":false,"cert":%s,"key":%s}}`, s.open.port, q(p.clientPEM), q(p.clientKeyPEM)))},
			{"rediss:// with a tls object", parsed(fmt.Sprintf(`{"url":"rediss://127.0.0.1:%d/2","tls":{"ca":%s,"certFile":%s,"keyFile":%s}}`, s.open.port, q(p.caPEM), q(p.clientFile), q(p.clientKeyFile)))},
			{"Config", at(s.open, "", &config.TLS{Config: &tls.Config{RootCAs: s.pool, Certificates: []tls.Certificate{s.clientPair}}})},
			{"AUTH", at(s.locked, s.lockedPassword, full)},
			{"rediss:// with AUTH", parsed(fmt.Sprintf(`{"url":"rediss://:%s@127.0.0.1:%d","tls":{"caFile":%s,"certFile":%s,"keyFile":%s}}`, s.lockedPassword, s.locked.port, q(p.caFile), q(p.clientFile), q(p.clientKeyFile)))},
		} {
			if err := dialPing(t.Context(), tc.conn); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	})

	t.Run("fails clearly", func(t *testing.T) {
		isAlert := func(text string) func(error) bool {
			return func(err error) bool {
				var op *net.OpError
				return errors.As(err, &op) && op.Op == "remote error" && op.Err.Error() == text
			}
		}
		for _, tc := range []struct {
			name   string
			conn   config.Connection
			want   string           // the start of the error
			isType func(error) bool // the original in the chain
		}{
			{"wrong CA", at(s.open, "", with(func(c *config.TLS) { c.CA = p.otherCAPEM })),
				"TLS failed: the server's certificate is not trusted, being signed by an unknown authority: set tls.ca or tls.caFile to the CA that signed it: tls: failed to verify certificate: x509: certificate signed by unknown authority",
				func(err error) bool {
					var v *tls.CertificateVerificationError
					var u x509.UnknownAuthorityError
					return errors.As(err, &v) && errors.As(err, &u)
				}},
			{"no CA: system roots", at(s.open, "", with(func(c *config.TLS) { c.CA = "" })),
				"TLS failed: the server's certificate is not trusted",
				func(err error) bool { var u x509.UnknownAuthorityError; return errors.As(err, &u) }},
			{"name mismatch", at(s.open, "", with(func(c *config.TLS) { c.ServerName = "other.test" })),
				`TLS failed: the server's certificate is not valid for "other.test": set tls.servername to a name it carries: tls: failed to verify certificate: x509: certificate is valid for redis.test, not other.test`,
				func(err error) bool { var h x509.HostnameError; return errors.As(err, &h) }},
			{"no client certificate", at(s.open, "", &config.TLS{CA: p.caPEM}),
				"TLS failed: the server requires a client certificate: set tls.cert and tls.key (or tls.certFile and tls.keyFile): remote error: tls: certificate required",
				isAlert("tls: certificate required")},
			{"no client certificate, AUTH", at(s.locked, s.lockedPassword, &config.TLS{CAFile: p.caFile}),
				"TLS failed: the server requires a client certificate: set tls.cert and tls.key (or tls.certFile and tls.keyFile): remote error: tls: certificate required",
				isAlert("tls: certificate required")},
			{"client certificate refused", at(s.open, "", with(func(c *config.TLS) { c.Cert, c.Key = p.otherPEM, p.otherKeyPEM })),
				"TLS failed: the server refused the client certificate (tls.cert or tls.certFile): it must be signed by a CA the server trusts (tls-ca-cert-file) and valid for client authentication: remote error: tls: unknown certificate authority",
				isAlert("tls: unknown certificate authority")},
			{"client certificate refused, AUTH", at(s.locked, s.lockedPassword, with(func(c *config.TLS) { c.Cert, c.Key = p.otherPEM, p.otherKeyPEM })),
				"TLS failed: the server refused the client certificate",
				isAlert("tls: unknown certificate authority")},
			{"TLS 1.2, no client certificate", at(s.open, "", &config.TLS{Config: &tls.Config{RootCAs: s.pool, MaxVersion: tls.VersionTLS12}}),
				"TLS failed: the handshake failed; the server may require a client certificate (tls.cert and tls.key): remote error: tls: handshake failure",
				isAlert("tls: handshake failure")},
			{"TLS 1.2, client certificate refused", at(s.open, "", &config.TLS{Config: &tls.Config{RootCAs: s.pool, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{other}}}),
				"TLS failed: the server refused the client certificate",
				isAlert("tls: unknown certificate authority")},
			{"a port without TLS", at(s.plain, "", full),
				"TLS failed: no answer to the handshake in time (is the port a TLS port?): context deadline exceeded",
				func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		} {
			// Three times: the server's alert and its reset race with the
			// client's first request (see tlsConn). Once for the timeout.
			tries := 3
			if tc.name == "a port without TLS" {
				tries = 1
			}
			for range tries {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				err := dialPing(ctx, tc.conn)
				cancel()
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !tc.isType(err) {
					t.Errorf("%s: Dial() err = %v (%T), want %s... wrapping the original", tc.name, err, errors.Unwrap(err), tc.want)
					break
				}
				if !errors.Is(err, lock.ErrTLS) {
					t.Errorf("%s: Dial() err = %v, want it to match lock.ErrTLS", tc.name, err)
					break
				}
			}
		}
	})

	// The server's replies to AUTH do not show the password sent.
	t.Run("AUTH errors", func(t *testing.T) {
		for _, tc := range []struct {
			conn config.Connection
			want string
		}{
			{at(s.locked, pw, full), "WRONGPASS invalid username-password pair or user is disabled."},
			{at(s.open, pw, full), "ERR AUTH <password> called without any password configured for the default user."},
		} {
			err := dialPing(t.Context(), tc.conn)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), pw) {
				t.Errorf("Dial() with a wrong password err = %v, want %s and not the password", err, tc.want)
			}
		}
	})

	// Dial's PING takes any reply as proof that the TLS session stands,
	// even NOAUTH from a server that wants a password none was given for.
	t.Run("PING answered NOAUTH", func(t *testing.T) {
		conn, err := at(s.locked, "", full).Dial(t.Context(), 2*time.Second)
		if err != nil {
			t.Fatalf("Dial() without the password err = %v, want nil", err)
		}
		defer conn.Close()
		if _, err := redis.DoContext(conn, t.Context(), "GET", "k"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Errorf("GET without the password err = %v, want NOAUTH", err)
		}
	})

	// The files are read at every dial: a CA file replaced is used by the
	// next connection.
	t.Run("files read at each dial", func(t *testing.T) {
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, []byte(p.otherCAPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		conn := at(s.open, "", &config.TLS{CAFile: caFile, CertFile: p.clientFile, KeyFile: p.clientKeyFile})
		var u x509.UnknownAuthorityError
		if err := dialPing(t.Context(), conn); !errors.As(err, &u) {
			t.Fatalf("Dial() with the other CA err = %v, want x509.UnknownAuthorityError", err)
		}
		if err := os.WriteFile(caFile, []byte(p.caPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := dialPing(t.Context(), conn); err != nil {
			t.Fatalf("Dial() after the CA file was replaced err = %v, want nil", err)
		}
		if err := os.Remove(caFile); err != nil {
			t.Fatal(err)
		}
		want := "config: tls.caFile: open " + caFile + ": no such file or directory"
		if err := dialPing(t.Context(), conn); err == nil || err.Error() != want {
			t.Fatalf("Dial() after the CA file was removed err = %v, want %s", err, want)
		}
	})
}
