package config_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pki is a test's certificates: a CA, a server certificate it signed (for
// IP 127.0.0.1 and the name redis.test), a client certificate it signed,
// and a second CA, unknown to the server, with a client certificate of its
// own. Each is PEM text and a file holding it.
type pki struct {
	dir                                  string
	caPEM, serverPEM, serverKeyPEM       string
	clientPEM, clientKeyPEM              string
	otherCAPEM, otherPEM, otherKeyPEM    string
	caFile, serverFile, serverKeyFile    string
	clientFile, clientKeyFile            string
	otherCAFile, otherFile, otherKeyFile string
}

// newPKI makes the certificates in a directory removed when the test ends.
func newPKI(t *testing.T) *pki {
	t.Helper()
	p, err := makePKI(t.TempDir())
	if err != nil {
		t.Fatalf("making certificates: %v", err)
	}
	return p
}

func makePKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	ca, caKey, caPEM, err := newCert("test CA", nil, nil, true, nil, nil)
	if err != nil {
		return nil, err
	}
	_, _, serverPEM, err := newCert("redis server", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"redis.test"})
	if err != nil {
		return nil, err
	}
	_, _, clientPEM, err := newCert("lock client", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	if err != nil {
		return nil, err
	}
	other, otherKey, otherCAPEM, err := newCert("other CA", nil, nil, true, nil, nil)
	if err != nil {
		return nil, err
	}
	_, _, otherPEM, err := newCert("stranger", other, otherKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	if err != nil {
		return nil, err
	}
	p.caPEM = caPEM[0]
	p.serverPEM, p.serverKeyPEM = serverPEM[0], serverPEM[1]
	p.clientPEM, p.clientKeyPEM = clientPEM[0], clientPEM[1]
	p.otherCAPEM = otherCAPEM[0]
	p.otherPEM, p.otherKeyPEM = otherPEM[0], otherPEM[1]
	for _, f := range []struct {
		path *string
		name string
		text string
	}{
		{&p.caFile, "ca.pem", p.caPEM},
		{&p.serverFile, "server.pem", p.serverPEM},
		{&p.serverKeyFile, "server.key", p.serverKeyPEM},
		{&p.clientFile, "client.pem", p.clientPEM},
		{&p.clientKeyFile, "client.key", p.clientKeyPEM},
		{&p.otherCAFile, "other-ca.pem", p.otherCAPEM},
		{&p.otherFile, "other.pem", p.otherPEM},
		{&p.otherKeyFile, "other.key", p.otherKeyPEM},
	} {
		*f.path = filepath.Join(dir, f.name)
		if err := os.WriteFile(*f.path, []byte(f.text), 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newCert makes a certificate signed by parent (self-signed when nil) and
// returns it, its key, and [certificate PEM, key PEM]. Leaf certificates
// carry IP 127.0.0.1 and dns.
func newCert(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, usage []x509.ExtKeyUsage, dns []string) (*x509.Certificate, *ecdsa.PrivateKey, [2]string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, [2]string{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, [2]string{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = dns
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, [2]string{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, [2]string{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, [2]string{}, err
	}
	return cert, key, [2]string{
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}, nil
}

// server is a redis-server this test started.
type server struct {
	port int
	log  *syncBuffer
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// syncBuffer is the server's output, written by exec's copying goroutine
// and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRedis starts redis-server (from $PATH; Debian's is built with TLS)
// on a free loopback port with args added, waits until it answers PING,
// and kills it when the test ends. With ping set, the port is a TLS port
// (the plain one is off) and ping is how to reach it.
func startRedis(t *testing.T, ping *tls.Config, args ...string) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("these tests need redis-server (Debian's, built with TLS): %v", err)
	}
	// Another process may take the free port before the server binds it:
	// a few tries.
	var last string
	for range 3 {
		port := freePort(t)
		full := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
		if ping != nil {
			full = append(full, "--port", "0", "--tls-port", strconv.Itoa(port))
		} else {
			full = append(full, "--port", strconv.Itoa(port))
		}
		full = append(full, args...)
		s := &server{port: port, log: &syncBuffer{}}
		cmd := exec.Command(bin, full...)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if err := waitPing(exited, s.addr(), ping); err != nil {
			stop()
			last = fmt.Sprintf("%v; its output:\n%s", err, s.log.String())
			continue
		}
		t.Cleanup(stop)
		return s
	}
	t.Fatalf("redis-server did not start: %s", last)
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPing polls addr with PING for up to 10s, until it answers PONG or
// the server exits.
func waitPing(exited <-chan struct{}, addr string, tc *tls.Config) error {
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = pingOnce(addr, tc); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no PONG within 10s: %w", err)
}

func pingOnce(addr string, tc *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if tc != nil {
		conn = tls.Client(conn, tc)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// PONG, or NOAUTH from a server with a password: either way it answers.
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}
