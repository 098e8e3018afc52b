package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
)

// TLS is how a connection speaks TLS, with the option names of Node's
// tls.connect that the original's users write in JSON ("tls":{...}). A
// Connection with a nil TLS dials without TLS, unless its URL is
// rediss://; a zero TLS verifies the server's certificate against the
// system's roots, for the host dialled.
//
// PEM text and files are read when the connection is validated and again
// at every dial, so that a renewed certificate or key is picked up by the
// next connection; a pool dials only when a connection is needed.
type TLS struct {
	// CA ("ca") is PEM text holding the certificates of the authorities
	// that sign the servers' certificates, such as a private CA's. When CA
	// and CAFile are empty, the system's roots are used.
	CA string
	// Cert ("cert") is PEM text holding the client certificate, followed by
	// any intermediate certificates, for a server that asks for one (Redis
	// does by default: tls-auth-clients yes). It goes with Key or KeyFile.
	Cert string
	// Key ("key") is PEM text holding the client certificate's private key,
	// unencrypted (PKCS #1, PKCS #8 or SEC 1). It is shown as xxxxx.
	Key string
	// CAFile ("caFile") is a file holding what CA holds; give CA or CAFile.
	CAFile string
	// CertFile ("certFile") is a file holding what Cert holds; give Cert or
	// CertFile.
	CertFile string
	// KeyFile ("keyFile") is a file holding what Key holds; give Key or
	// KeyFile.
	KeyFile string
	// ServerName ("servername") is the name the server's certificate must
	// carry, and the name sent in the handshake (SNI). Empty means the host
	// dialled (an IP address must then be among the certificate's IP SANs).
	ServerName string
	// InsecureSkipVerify ("rejectUnauthorized": false) accepts any server
	// certificate, for any name: the connection is encrypted, but anyone in
	// the middle can read it. For tests only.
	InsecureSkipVerify bool
	// Config, when set, is used as given (cloned at every dial), for what
	// the fields above cannot say; the other fields must then be empty. If
	// its ServerName is empty, it is the host dialled. It has no JSON.
	Config *tls.Config
}

// tlsErr is a problem with the tls field f of a connection.
func tlsErr(f, format string, args ...any) error {
	return &connErr{"tls." + f, fmt.Sprintf(format, args...)}
}

// pemSource is one item given as PEM text or as a file.
type pemSource struct {
	text, file         string
	textName, fileName string // their JSON names
}

func (s pemSource) given() bool { return s.text != "" || s.file != "" }

// name is the JSON name of the field the item was given in.
func (s pemSource) name() string {
	if s.file != "" {
		return s.fileName
	}
	return s.textName
}

// read returns the PEM, reading the file if it is one.
func (s pemSource) read() ([]byte, error) {
	if s.text != "" {
		return []byte(s.text), nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return nil, tlsErr(s.fileName, "%v", err)
	}
	defer f.Close()
	// Bounded: a path to a device or a log file would be read for ever.
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	switch {
	case err != nil:
		return nil, tlsErr(s.fileName, "%v", err)
	case len(b) > maxPEMFile:
		return nil, tlsErr(s.fileName, "%s: more than %d MiB, too large for a PEM file", s.file, maxPEMFile>>20)
	}
	return b, nil
}

// maxPEMFile bounds what is read of a PEM file: a bundle of every public
// CA is a few hundred KiB.
const maxPEMFile = 4 << 20

// certificates parses every CERTIFICATE block of the PEM, and fails if
// there is none.
func (s pemSource) certificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, tlsErr(s.name(), "certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		where := "the PEM text"
		if s.file != "" {
			where = s.file
		}
		return nil, tlsErr(s.name(), "no certificate in %s (want PEM: -----BEGIN CERTIFICATE-----)", where)
	}
	return certs, nil
}

// config is the *tls.Config for dialling host. Its errors name the field
// as the JSON does ("tls.caFile: ...") and never quote a key.
func (t *TLS) config(host string) (*tls.Config, error) {
	if t.Config != nil {
		if set := t.fieldsSet(); len(set) > 0 {
			return nil, &connErr{"tls", fmt.Sprintf("Config is used as given: leave the other fields empty (got %s)", strings.Join(set, ", "))}
		}
		c := t.Config.Clone()
		if c.ServerName == "" {
			c.ServerName = host
		}
		return c, nil
	}
	c := &tls.Config{ServerName: cmp.Or(t.ServerName, host), InsecureSkipVerify: t.InsecureSkipVerify}
	ca := pemSource{t.CA, t.CAFile, "ca", "caFile"}
	cert := pemSource{t.Cert, t.CertFile, "cert", "certFile"}
	key := pemSource{t.Key, t.KeyFile, "key", "keyFile"}
	for _, s := range []pemSource{ca, cert, key} {
		if s.text != "" && s.file != "" {
			return nil, tlsErr(s.textName, "give either %s or %s, not both", s.textName, s.fileName)
		}
	}
	if ca.given() {
		data, err := ca.read()
		if err != nil {
			return nil, err
		}
		certs, err := ca.certificates(data)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		for _, cert := range certs {
			c.RootCAs.AddCert(cert)
		}
	}
	switch {
	case cert.given() && !key.given():
		return nil, tlsErr(cert.name(), "a client certificate needs its private key: set key or keyFile too")
	case key.given() && !cert.given():
		return nil, tlsErr(key.name(), "a private key needs its client certificate: set cert or certFile too")
	case cert.given():
		certPEM, err := cert.read()
		if err != nil {
			return nil, err
		}
		if _, err := cert.certificates(certPEM); err != nil {
			return nil, err
		}
		keyPEM, err := key.read()
		if err != nil {
			return nil, err
		}
		if encryptedKey(keyPEM) {
			return nil, tlsErr(key.name(), "an encrypted private key is not supported: give it decrypted")
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		switch {
		case err != nil && strings.Contains(err.Error(), "does not match"):
			// X509KeyPair's errors quote no part of the key.
			return nil, tlsErr(key.name(), "not the private key of the client certificate (%s): %v", cert.name(), err)
		case err != nil:
			return nil, tlsErr(key.name(), "not a usable private key: %v", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// fieldsSet names the fields other than Config that are set, as the JSON
// names them.
func (t *TLS) fieldsSet() []string {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"ca", t.CA != ""}, {"cert", t.Cert != ""}, {"key", t.Key != ""},
		{"caFile", t.CAFile != ""}, {"certFile", t.CertFile != ""}, {"keyFile", t.KeyFile != ""},
		{"servername", t.ServerName != ""}, {"rejectUnauthorized", t.InsecureSkipVerify},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	return set
}

// encryptedKey reports whether the first private key of the PEM is
// encrypted (PKCS #8 "ENCRYPTED PRIVATE KEY", or OpenSSL's legacy
// Proc-Type header), which X509KeyPair would only call unparsable.
func encryptedKey(data []byte) bool {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED")
		}
	}
}
