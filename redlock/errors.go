package redlock

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/lockerr"
)

// masterError is what a master's failure to answer a request means, for
// its NodeError:
//   - any error reply while connecting (WRONGPASS, NOAUTH, a password the
//     master does not expect, NOPERM, a database out of range), or NOAUTH
//     in answer to a request: ErrAuth, a configuration error;
//   - a TLS handshake that failed (a certificate not trusted or not naming
//     the master, a client certificate refused or missing): ErrTLS, a
//     configuration error too;
//   - READONLY: ErrReadOnly, the master is a replica;
//   - any other failure of the connection (no answer in time, a broken
//     connection, a failed dial): ErrUnreachable;
//   - any other server error reply is carried as it is.
func masterError(err error) error {
	var conn *pipeline.Error
	if !errors.As(err, &conn) {
		return serverError(err)
	}
	var reply redis.Error
	switch {
	case errors.Is(err, lockerr.ErrAuth), errors.Is(err, lockerr.ErrTLS):
		return err // the dial said so already (config.Connection.Dial)
	case conn.Dial && errors.As(err, &reply):
		// A reply while connecting (to AUTH, SELECT, CLIENT SETNAME...):
		// the master answers, and refuses what this client sends it.
		return fmt.Errorf("%w: %w", lockerr.ErrAuth, reply)
	case tlsFailure(err):
		return fmt.Errorf("%w: %w", lockerr.ErrTLS, err)
	}
	return unreachable(conn)
}

// serverError reads a server's error reply to a request.
func serverError(err error) error {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return err
	}
	switch {
	case authReply(reply):
		return fmt.Errorf("%w: %w", lockerr.ErrAuth, err)
	case strings.HasPrefix(string(reply), "READONLY"):
		return fmt.Errorf("%w: %w", lockerr.ErrReadOnly, err)
	}
	return err
}

// authReply reports whether a reply says that the credentials are wrong
// or missing.
func authReply(reply redis.Error) bool {
	return strings.HasPrefix(string(reply), "WRONGPASS") || strings.HasPrefix(string(reply), "NOAUTH")
}

// tlsFailure reports whether err is a TLS handshake's failure: the
// master's certificate could not be verified, or the master sent an
// alert (with TLS 1.3 a refused or missing client certificate shows only
// as an alert on the first read after the handshake).
func tlsFailure(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &header):
		return true
	case errors.As(err, &op) && op.Op == "remote error":
		return strings.HasPrefix(op.Err.Error(), "tls:")
	}
	return false
}

// unreachable wraps a failure to reach a master.
func unreachable(err error) error {
	return fmt.Errorf("%w: %w", lockerr.ErrUnreachable, err)
}
