//go:build unix

package production

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/integration"
	"github.com/leverege/lock/internal/conformance"
)

// tlsMasters starts three TLS-only masters (--port 0 --tls-port P
// --tls-auth-clients yes) with certificates from ca. The first two need a
// password (AUTH after the handshake); the third needs none, so that a
// dial to it makes its round trip with PING.
func tlsMasters(t *testing.T, ca *integration.CA) []*integration.Server {
	t.Helper()
	ss := make([]*integration.Server, 3)
	for i := range ss {
		opts := []integration.ServerOption{integration.WithTLS(ca, integration.ClientCertRequired)}
		if i < 2 {
			opts = append(opts, integration.WithPassword(fmt.Sprintf("tls-pw-%d", i)))
		}
		ss[i] = integration.StartServer(t, opts...)
		require.Contains(t, ss[i].Args(), "--tls-auth-clients")
	}
	return ss
}

// tlsConnections are the JSON connections to the masters of tlsMasters in
// every form a user may write: PEM text, files, and a rediss:// URL with
// a tls object beside it (which also names the server as its certificate
// does, localhost). tls replaces fields of every connection's tls object
// (nil: none replaced); a field set to "" is removed.
func tlsConnections(ss []*integration.Server, ca *integration.CA, client *integration.Cert, tls object) []object {
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
	ca := integration.NewCA(t, "lock-test-ca")
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
	wrongCA := integration.NewCA(t, "wrong-ca")
	stranger := wrongCA.ClientCert(t, "stranger")
	noRetry := object{"retryCount": 10, "retryDelay": 1000, "retryJitter": 0, "nodeTimeout": ms(nodeTimeout)}
	for _, tc := range []struct {
		name string
		tls  object // replaces these fields of every connection's tls
		want string // what every master's error says
	}{
		{"WrongCA", object{"ca": wrongCA.CertPEM},
			"TLS failed: the server's certificate is not trusted, being signed by an unknown authority: set tls.ca or tls.caFile to the CA that signed it"},
		{"NoClientCert", object{"cert": "", "key": ""},
			"TLS failed: the server requires a client certificate: set tls.cert and tls.key (or tls.certFile and tls.keyFile)"},
		{"ClientCertOfAnotherCA", object{"cert": stranger.CertPEM, "key": stranger.KeyPEM},
			"TLS failed: the server refused the client certificate (tls.cert or tls.certFile)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
				assert.Contains(t, ne.Error(), tc.want, "master %d's error does not say what is wrong", i)
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
