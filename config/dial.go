package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/lockerr"
)

// Dial connects to the master as a Locker built by lock.Create does: with
// its credentials, database and TLS (or its URL), the connection bounded
// by ctx, and each read and write by timeout (when positive).
//
// With TLS, it reads the TLS files again (a renewed certificate is picked
// up) and makes one round trip before it returns: PING, unless AUTH or
// SELECT made one already. Under TLS 1.3 the server checks the client's
// certificate after the client's side of the handshake is over, and says
// it refused or needed one only in reply to the first request; the round
// trip makes Dial fail then, rather than the first command sent on the
// connection. A TLS failure's error says which in plain words (the
// server's certificate not trusted, a name mismatch, a client certificate
// refused or required, another handshake failure) and wraps the original,
// such as a *tls.CertificateVerificationError.
//
// Its errors never show the password: Dial reads the URL itself rather
// than through redigo's DialURL, whose errors quote the URL whole.
// redigo's own errors (the network's, and the server's replies to AUTH
// and SELECT, such as "WRONGPASS invalid username-password pair") carry
// no secret and are returned as they are.
func (c Connection) Dial(ctx context.Context, timeout time.Duration) (redis.Conn, error) {
	e, err := c.endpoint()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var tc *tls.Config
	if e.tls != nil {
		if tc, err = e.tls.config(e.host); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	opts := []redis.DialOption{
		redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, network, addr, tc)
		}),
		redis.DialUsername(e.username),
		redis.DialPassword(e.password),
		redis.DialDatabase(e.db),
	}
	if timeout > 0 {
		opts = append(opts, redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	}
	conn, err := redis.DialContext(ctx, "tcp", e.addr(), opts...)
	if err == nil && tc != nil && e.password == "" && e.db == 0 {
		// Any reply will do, even an error (NOAUTH, LOADING): the server
		// has taken the TLS session.
		var reply redis.Error
		if _, err = redis.DoContext(conn, ctx, "PING"); errors.As(err, &reply) {
			err = nil
		}
		if err != nil {
			conn.Close()
		}
	}
	if err != nil && tc != nil {
		return nil, tlsFailure(err, len(tc.Certificates) > 0 || tc.GetClientCertificate != nil)
	}
	return conn, err
}

// The bounds redigo puts on a dial, kept for a context without a deadline.
const (
	connectTimeout   = 30 * time.Second
	handshakeTimeout = 10 * time.Second
)

// dialTLS connects, and makes the TLS handshake when tc is set. It does
// the handshake itself, rather than leave it to redigo, so that ctx bounds
// it and its failures can be told from those that follow it.
func dialTLS(ctx context.Context, network, addr string, tc *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: connectTimeout, KeepAlive: 5 * time.Minute}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil || tc == nil {
		return conn, err
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	t := tls.Client(conn, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &handshakeError{err}
	}
	return &tlsConn{Conn: t}, nil
}

// tlsConn is a client's TLS connection whose first write, if it fails,
// reports the alert the server sent before it hung up, if there is one.
// A server that refuses the client's certificate under TLS 1.3 sends its
// alert and closes the connection with the client's last handshake
// message unread, which resets it: if the client's first request (AUTH,
// PING) goes out after the reset came in, the write fails with
// "connection reset by peer" although the alert that says why is waiting
// to be read.
type tlsConn struct {
	*tls.Conn
	wrote atomic.Bool
}

// alertWait bounds the read for the alert: it is already there or never
// comes.
const alertWait = 100 * time.Millisecond

func (c *tlsConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	// Only the first write, which Dial makes: later, the read would race
	// with the connection's reader for its data and its deadline.
	if err != nil && !c.wrote.Swap(true) {
		_ = c.Conn.SetReadDeadline(time.Now().Add(alertWait))
		var op *net.OpError
		if _, rerr := c.Conn.Read(make([]byte, 1)); errors.As(rerr, &op) && op.Op == "remote error" {
			return n, rerr
		}
	}
	c.wrote.Store(true)
	return n, err
}

// handshakeError marks an error of the TLS handshake itself.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// tlsFailure says in plain words what went wrong with a TLS dial, keeping
// err in the chain; the server's replies (such as WRONGPASS) and errors
// that say enough by themselves (a refused connection) are returned as
// they are. sentCert says whether a client certificate was offered.
func tlsFailure(err error, sentCert bool) error {
	var (
		hs        *handshakeError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		op        *net.OpError
	)
	inHandshake := errors.As(err, &hs)
	refused := "the server refused the client certificate (tls.cert or tls.certFile): it must be signed by a CA the server trusts (tls-ca-cert-file) and valid for client authentication"
	required := "the server requires a client certificate: set tls.cert and tls.key (or tls.certFile and tls.keyFile)"
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w: the server's certificate is not trusted, being signed by an unknown authority: set tls.ca or tls.caFile to the CA that signed it: %w", lockerr.ErrTLS, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w: the server's certificate is not valid for %q: set tls.servername to a name it carries: %w", lockerr.ErrTLS, hostname.Host, err)
	case errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%w: the server's certificate is not valid: %w", lockerr.ErrTLS, err)
	case errors.As(err, &op) && op.Op == "remote error":
		// The server's TLS alert (crypto/tls's unexported alert type, so
		// told by its text).
		switch op.Err.Error() {
		case "tls: certificate required":
			return fmt.Errorf("%w: %s: %w", lockerr.ErrTLS, required, err)
		case "tls: bad certificate", "tls: unknown certificate authority", "tls: unknown certificate",
			"tls: unsupported certificate", "tls: expired certificate", "tls: revoked certificate", "tls: access denied":
			if sentCert {
				return fmt.Errorf("%w: %s: %w", lockerr.ErrTLS, refused, err)
			}
		case "tls: handshake failure":
			if !sentCert { // what TLS 1.2 servers send for a missing certificate
				return fmt.Errorf("%w: the handshake failed; the server may require a client certificate (tls.cert and tls.key): %w", lockerr.ErrTLS, err)
			}
		}
		return fmt.Errorf("%w: the server refused the connection: %w", lockerr.ErrTLS, err)
	case errors.As(err, &header):
		return fmt.Errorf("%w: the handshake failed: the server does not speak TLS on this port: %w", lockerr.ErrTLS, err)
	case inHandshake && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer to the handshake in time (is the port a TLS port?): %w", lockerr.ErrTLS, err)
	case inHandshake:
		return fmt.Errorf("%w: the handshake failed: %w", lockerr.ErrTLS, err)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		// The server hung up on the first request without a word: what a
		// server that refused the certificate does when its alert was lost.
		if sentCert {
			return fmt.Errorf("%w: the server closed the connection after the handshake; it may have refused the client certificate: %w", lockerr.ErrTLS, err)
		}
		return fmt.Errorf("%w: the server closed the connection after the handshake; it may require a client certificate (tls.cert and tls.key): %w", lockerr.ErrTLS, err)
	}
	return err
}
