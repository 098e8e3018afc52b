//go:build unix

package production

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration/conformance"
	"github.com/leverege/lock/internal/redistest"
)

// tlsMasters starts three TLS-only masters (--port 0 --tls-port P
// --tls-auth-clients yes) with certificates from ca. The first two need a
// password (AUTH after the handshake); the third needs none, so that a
// dial to it makes its round trip with PING.
func tlsMasters(t *testing.T, ca *redistest.CA) []*redistest.Server {
	t.Helper()
	ss := make([]*redistest.Server, 3)
	for i := range ss {
		opts := []redistest.ServerOption{redistest.WithTLS(ca, redistest.ClientCertRequired)}
		if i < 2 {
			opts = append(opts, redistest.WithPassword(fmt.Sprintf("tls-pw-%d", i)))
		}
		ss[i] = redistest.StartServer(t, opts...)
		require.Contains(t, ss[i].Args(), "--tls-auth-clients")
	}
	return ss
}

// tlsConnections are the JSON connections to the masters of tlsMasters in
// every form a user may write: PEM text, files, and a rediss:// URL with
// a tls object beside it (which also names the server as its certificate
// does, localhost). tls replaces fields of every connection's tls object
// (nil: none replaced); a field set to "" is removed.
func tlsConnections(ss []*redistest.Server, ca *redistest.CA, client *redistest.Cert, tls object) []object {
	forms := []object{
		{"ca": ca.CertPEM, "cert": client.CertPEM, "key": client.KeyPEM},
		{"caFile": ca.CertFile, "certFile": client.CertFile, "keyFile": client.KeyFile},
		{"ca": ca.CertPEM, "certFile": client.CertFile, "keyFile": client.KeyFile, "servername": "localhost"},
	}
	conns := make([]object, len(ss))
	for i, s := range ss {
		opts := forms[i]
		for k, v := range tls {
			for _, alt := range []string{k, strings.TrimSuffix(k, "File"), k + "File"} {
				delete(opts, alt) // the text and the file form of one item go together
			}
			if v != "" {
				opts[k] = v
			}
		}
		switch i {
		case 0, 1:
			conns[i] = with(hostPort(s), object{"password": fmt.Sprintf("tls-pw-%d", i), "tls": opts})
		default:
			conns[i] = object{"url": fmt.Sprintf("rediss://127.0.0.1:%d", s.Port()), "tls": opts}
		}
	}
	return conns
}

// TestTLS runs the conformance suite over three TLS masters that require
// client certificates, then shows that a TLS misconfiguration fails a Lock
// at once, saying what is wrong and where.
func TestTLS(t *testing.T) {
	ca := redistest.NewCA(t, "lock-test-ca")
	ss := tlsMasters(t, ca)
	client := ca.ClientCert(t, "locker")

	t.Run("Conformance", func(t *testing.T) {
		conns := tlsConnections(ss, ca, client, nil)
		cfg := parseConfig(t, conns, object{})
		require.Equal(t, ca.CertPEM, cfg.Connections[0].TLS.CA, "connection 0 gives PEM text")
		require.Equal(t, client.CertFile, cfg.Connections[1].TLS.CertFile, "connection 1 gives files")
		require.True(t, strings.HasPrefix(cfg.Connections[2].URL, "rediss://"), "connection 2 is a rediss:// URL")
		require.Equal(t, "localhost", cfg.Connections[2].TLS.ServerName, "connection 2's tls object beside its URL")
		conformance.Run(t, backend(ss, false, func(t *testing.T, o conformance.Opts) *config.Config {
			return parseConfig(t, conns, lockOptions(o))
		}))
	})

	// A Lock whose every master refuses the TLS configuration gives up after
	// one attempt, although its schedule allows ten more a second apart.
	wrongCA := redistest.NewCA(t, "wrong-ca")
	stranger := wrongCA.ClientCert(t, "stranger")
	noRetry := object{"retryCount": 10, "retryDelay": 1000, "retryJitter": 0, "nodeTimeout": ms(nodeTimeout)}
	for _, tc := range []struct {
		name string
		tls  object // replaces these fields of every connection's tls
		row  string // finds the row of docs/configuration.md's TLS table that says what every master's error starts with
	}{
		{"WrongCA", object{"ca": wrongCA.CertPEM}, "not trusted"},
		{"NoClientCert", object{"cert": "", "key": ""}, "requires a client certificate"},
		{"ClientCertOfAnotherCA", object{"cert": stranger.CertPEM, "key": stranger.KeyPEM}, "refused the client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := docTLSError(t, tc.row)
			flush(t, ss)
			l := create(t, parseConfig(t, tlsConnections(ss, ca, client, tc.tls), noRetry), "", nil)
			start := time.Now()
			_, err := l.Lock(quick(t), "k", time.Second)
			took := time.Since(start)
			t.Logf("Lock took %v: %v", took, err)
			require.ErrorIs(t, err, lock.ErrNotAcquired, "Lock(%q) err = %v, want ErrNotAcquired", "k", err)
			require.ErrorIs(t, err, lock.ErrTLS, "Lock(%q) err = %v, want ErrTLS", "k", err)
			assert.NotErrorIs(t, err, lock.ErrUnreachable, "a TLS refusal is not an unreachable master")
			neverNotHeld(t, err, `Lock("k")`)
			le := lockError(t, err)
			assert.Equal(t, 1, le.Attempts, "Lock(%q) attempts = %d, want 1: a TLS refusal is not retried", "k", le.Attempts)
			assert.Less(t, took, 900*time.Millisecond, "Lock(%q) took %v, want well under the 1s retry delay", "k", took)
			for i, s := range ss {
				ne := nodeError(err, i)
				if !assert.NotNil(t, ne, "Lock(%q) err = %v: no error for master %d (%s)", "k", err, i, s.Addr()) {
					continue
				}
				assert.ErrorIs(t, ne, lock.ErrTLS, "master %d", i)
				assert.Equal(t, s.Addr(), ne.Addr, "master %d's error names another address", i)
				assert.Contains(t, ne.Error(), s.Addr(), "master %d's error does not name it", i)
				assert.Contains(t, ne.Error(), fmt.Sprintf("(%s): %s", s.Addr(), want),
					"master %d's error does not say what %s says it does", i, docFile)
			}
			assert.Empty(t, allKeys(t, ss), "keys left behind by a Lock that never connected")
		})
	}

	// One master misconfigured of three: the other two are a quorum.
	t.Run("OneWrongCA", func(t *testing.T) {
		flush(t, ss)
		conns := tlsConnections(ss, ca, client, nil)
		conns[1] = with(conns[1], object{"tls": object{"ca": wrongCA.CertPEM, "cert": client.CertPEM, "key": client.KeyPEM}})
		l := create(t, parseConfig(t, conns, noRetry), "", nil)
		lk, err := l.Lock(quick(t), "k", time.Second)
		require.NoError(t, err, "Lock(%q) with one master of three refusing TLS", "k")
		require.NoError(t, lk.Unlock(quick(t)), "Unlock")
	})
}

// docTLSError is the text that, as docs/configuration.md's TLS section
// says, an error starts with: the first cell of the row of its table
// whose first cell holds phrase.
func docTLSError(t testing.TB, phrase string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.FromSlash(docFile))
	require.NoError(t, err)
	doc := string(raw)
	start := strings.Index(doc, "\n## TLS\n")
	require.GreaterOrEqual(t, start, 0, "%s has no section TLS", docFile)
	section := doc[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		if strings.Contains(cell, phrase) {
			text, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(cell), "`"), "`")
			return text
		}
	}
	t.Fatalf("%s, section TLS: no error in its table says %q", docFile, phrase)
	return ""
}
