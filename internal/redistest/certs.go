package redistest

// Certificates for TLS tests, made in the test with crypto/x509: no openssl,
// nothing fetched.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certValidity is how long the certificates of [NewCA] are valid, counted
// from an hour before they are made (a little clock skew between the test and
// redis-server's OpenSSL does not matter; both read the same clock here).
const certValidity = 48 * time.Hour

// CA is a certificate authority made by a test: a self-signed ECDSA P-256
// certificate and its key, in PEM text and in files. It issues server
// certificates ([CA.ServerCert]) and client certificates ([CA.ClientCert]).
// A second CA made with [NewCA] is a "wrong CA" for negative tests: its
// certificates do not verify against the first one.
//
// The PEM text and the file paths are the same data in two forms, for
// configurations that take either (Node's tls options take PEM text, Redis
// takes files). A CA is safe for concurrent use.
type CA struct {
	// Name is the CA certificate's subject common name.
	Name string
	// CertPEM is the CA certificate, PEM-encoded ("CERTIFICATE").
	CertPEM string
	// KeyPEM is the CA's private key, PEM-encoded PKCS #8 ("PRIVATE KEY").
	KeyPEM string
	// CertFile and KeyFile are files holding CertPEM and KeyPEM.
	CertFile, KeyFile string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string // where CertFile, KeyFile and issued certificates are written
}

// Cert is a certificate issued by a [CA], with its private key, in PEM text
// and in files.
type Cert struct {
	// Name is the certificate's subject common name.
	Name string
	// CertPEM is the certificate, PEM-encoded ("CERTIFICATE"); the issuing
	// CA's certificate is not appended.
	CertPEM string
	// KeyPEM is the private key, PEM-encoded PKCS #8 ("PRIVATE KEY").
	KeyPEM string
	// CertFile and KeyFile are files holding CertPEM and KeyPEM.
	CertFile, KeyFile string
	// CA is the issuer.
	CA *CA

	tls tls.Certificate
}

// NewCA makes a CA named name, with its files in a directory of t.TempDir().
// It fails t if the certificate cannot be made.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := newCA(t.TempDir(), name)
	if err != nil {
		t.Fatalf("integration: NewCA(%q): %v", name, err)
	}
	return ca
}

// ServerCert issues a certificate for a server on this machine: subject
// alternative names IP 127.0.0.1 and DNS localhost, usable for server and
// client authentication (redis-server presents its certificate as a client
// too, to its master when it is a replica with TLS replication). Its files are
// written in the CA's directory.
func (ca *CA) ServerCert(t testing.TB) *Cert {
	t.Helper()
	c, err := ca.issue(ca.dir, "", "localhost", true)
	if err != nil {
		t.Fatalf("integration: %s: issue a server certificate: %v", ca.Name, err)
	}
	return c
}

// ClientCert issues a client certificate with common name name (client
// authentication only). Its files are written in the CA's directory.
func (ca *CA) ClientCert(t testing.TB, name string) *Cert {
	t.Helper()
	c, err := ca.issue(ca.dir, "", name, false)
	if err != nil {
		t.Fatalf("integration: %s: issue a client certificate %q: %v", ca.Name, name, err)
	}
	return c
}

// CertPool returns a new pool holding only the CA's certificate.
func (ca *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ClientTLSConfig returns a new client configuration that trusts only this CA
// and presents cert, or no certificate when cert is nil. The server name is
// left empty: redigo sets it from the address dialled (an IP SAN of the
// server certificate, 127.0.0.1).
func (ca *CA) ClientTLSConfig(cert *Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLSCertificate()}
	}
	return cfg
}

// TLSCertificate returns the certificate and key for a [tls.Config].
func (c *Cert) TLSCertificate() tls.Certificate { return c.tls }

func newCA(dir, name string) (*CA, error) {
	s, err := sign(name, nil, func(tmpl *x509.Certificate) {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.MaxPathLenZero = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := writePair(dir, "ca-"+fileSafe(name), s.certPEM, s.keyPEM)
	if err != nil {
		return nil, err
	}
	return &CA{
		Name: name, CertPEM: s.certPEM, KeyPEM: s.keyPEM, CertFile: certFile, KeyFile: keyFile,
		cert: s.leaf, key: s.key, dir: dir,
	}, nil
}

// issue makes a certificate with common name cn signed by ca and writes it
// to dir as base.crt and base.key (base defaults to the common name and the
// serial number, so that names never collide).
func (ca *CA) issue(dir, base, cn string, server bool) (*Cert, error) {
	s, err := sign(cn, ca, func(tmpl *x509.Certificate) {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
	})
	if err != nil {
		return nil, err
	}
	if base == "" {
		base = fmt.Sprintf("%s-%x", fileSafe(cn), s.leaf.SerialNumber.Bytes()[:6])
	}
	certFile, keyFile, err := writePair(dir, base, s.certPEM, s.keyPEM)
	if err != nil {
		return nil, err
	}
	return &Cert{
		Name: cn, CertPEM: s.certPEM, KeyPEM: s.keyPEM, CertFile: certFile, KeyFile: keyFile, CA: ca,
		tls: tls.Certificate{Certificate: [][]byte{s.der}, PrivateKey: s.key, Leaf: s.leaf},
	}, nil
}

// signed is a new key and its certificate, parsed and in PEM.
type signed struct {
	key             *ecdsa.PrivateKey
	der             []byte
	leaf            *x509.Certificate
	certPEM, keyPEM string
}

// sign makes a key and a certificate for it with common name cn, valid from
// an hour ago for certValidity, shaped by shape and signed by ca (by its
// own key when ca is nil).
func sign(cn string, ca *CA, shape func(*x509.Certificate)) (*signed, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"lock integration tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}
	shape(tmpl)
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := encodePEM(der, key)
	if err != nil {
		return nil, err
	}
	return &signed{key: key, der: der, leaf: leaf, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// newSerial returns a random positive 127-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1<<40)), nil // never short, never zero
}

func encodePEM(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM string, err error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
	return certPEM, keyPEM, nil
}

func writePair(dir, base, certPEM, keyPEM string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, base+".crt")
	keyFile = filepath.Join(dir, base+".key")
	if err := os.WriteFile(certFile, []byte(certPEM), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// fileSafe turns a common name into a file name.
func fileSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	if s == "" || s[0] == '.' {
		s = "_" + s
	}
	return s
}
