package integration

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/leverege/lock/internal/redistest"
	"github.com/stretchr/testify/require"
)

// TestCA: the certificates verify for what they are made for, against
// their redistest.CA only, and their files hold their PEM text.
func TestCA(t *testing.T) {
	t.Parallel()
	ca := redistest.NewCA(t, "test CA")
	wrong := redistest.NewCA(t, "wrong CA")
	srv := ca.ServerCert(t)
	cli := ca.ClientCert(t, "app")

	for _, c := range []struct {
		name              string
		certPEM, keyPEM   string
		certFile, keyFile string
	}{
		{"ca", ca.CertPEM, ca.KeyPEM, ca.CertFile, ca.KeyFile},
		{"server", srv.CertPEM, srv.KeyPEM, srv.CertFile, srv.KeyFile},
		{"client", cli.CertPEM, cli.KeyPEM, cli.CertFile, cli.KeyFile},
	} {
		certFile, err := os.ReadFile(c.certFile)
		require.NoError(t, err)
		require.Equal(t, c.certPEM, string(certFile), "%s: CertFile holds CertPEM", c.name)
		keyFile, err := os.ReadFile(c.keyFile)
		require.NoError(t, err)
		require.Equal(t, c.keyPEM, string(keyFile), "%s: KeyFile holds KeyPEM", c.name)
		fi, err := os.Stat(c.keyFile)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s: key file mode", c.name)
		_, err = tls.X509KeyPair([]byte(c.certPEM), []byte(c.keyPEM))
		require.NoError(t, err, "%s: the PEM pair loads", c.name)
		require.True(t, strings.HasPrefix(c.certPEM, "-----BEGIN CERTIFICATE-----"), c.name)
		require.True(t, strings.HasPrefix(c.keyPEM, "-----BEGIN PRIVATE KEY-----"), c.name)
	}

	verify := func(cert *redistest.Cert, roots *redistest.CA, usage x509.ExtKeyUsage, name string) error {
		_, err := cert.TLSCertificate().Leaf.Verify(x509.VerifyOptions{
			Roots: roots.CertPool(), DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage},
		})
		return err
	}
	require.NoError(t, verify(srv, ca, x509.ExtKeyUsageServerAuth, "127.0.0.1"))
	require.NoError(t, verify(srv, ca, x509.ExtKeyUsageServerAuth, "localhost"))
	require.NoError(t, verify(srv, ca, x509.ExtKeyUsageClientAuth, ""), "a server certificate serves as a replica's client certificate")
	require.Error(t, verify(srv, ca, x509.ExtKeyUsageServerAuth, "example.com"))
	require.NoError(t, verify(cli, ca, x509.ExtKeyUsageClientAuth, ""))
	require.Error(t, verify(cli, ca, x509.ExtKeyUsageServerAuth, ""), "a client certificate is for clients only")
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, verify(srv, wrong, x509.ExtKeyUsageServerAuth, "127.0.0.1"), &unknown)
	require.ErrorAs(t, verify(cli, wrong, x509.ExtKeyUsageClientAuth, ""), &unknown)
	require.Equal(t, "app", cli.Name)
	require.Same(t, ca, cli.CA)
}
