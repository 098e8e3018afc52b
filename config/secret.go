package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// Configurations travel through logs, error messages and debug dumps, and
// a connection's password would go with them. So every way of showing a
// Connection (fmt with any verb, log/slog, encoding/json) shows its
// secrets as xxxxx, as net/url's URL.Redacted does, and no error message
// quotes them.

// redacted stands for a secret wherever one would be shown.
const redacted = "xxxxx"

// redactUserInfo returns raw with the password of its user info replaced
// by xxxxx. A user info without a colon is replaced whole, since redigo
// takes it for a password; so is one that a parser could split elsewhere
// than we do (holding / ? or #, from a password written unescaped).
// Everything up to the last @ counts as the user info, so that no part of
// a password containing @ is left out.
func redactUserInfo(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword || strings.ContainsAny(user, "/?#") {
		return prefix + redacted + rest[at:]
	}
	return prefix + user + ":" + redacted + rest[at:]
}

// redactURL is raw as messages show it: its password redacted, and its
// query and fragment, which some clients read passwords from, cut off.
func redactURL(raw string) string {
	s := redactUserInfo(raw)
	after := 0
	if i := strings.LastIndex(s, redacted+"@"); i >= 0 {
		after = i + len(redacted) + 1
	}
	if i := strings.IndexAny(s[after:], "?#"); i >= 0 {
		s = s[:after+i] + "?…"
	}
	return s
}

// redacted returns c with its secrets replaced by xxxxx.
func (c Connection) redacted() Connection {
	if c.Password != "" {
		c.Password = redacted
	}
	if c.URL != "" {
		c.URL = redactURL(c.URL)
	}
	if c.TLS != nil {
		t := c.TLS.redacted()
		c.TLS = &t
	}
	return c
}

// redacted returns t with its private key replaced by xxxxx. Config is
// kept: fmt shows a pointer within a struct as an address, not its
// certificates' keys.
func (t TLS) redacted() TLS {
	if t.Key != "" {
		t.Key = redacted
	}
	return t
}

// Format formats c as fmt formats a struct, for every verb, but with its
// password (and the password in its URL) shown as xxxxx.
func (c Connection) Format(f fmt.State, verb rune) {
	type connection Connection // the same fields, without Format
	format(f, verb, connection(c.redacted()), "config.connection", "config.Connection")
}

// String is c as %v formats it: its password shown as xxxxx.
func (c Connection) String() string { return fmt.Sprint(c) }

// LogValue is c for log/slog, its password shown as xxxxx, with the names
// the JSON gives its fields.
func (c Connection) LogValue() slog.Value {
	r := c.redacted()
	attrs := stringAttrs([2]string{"url", r.URL})
	if r.Host != "" || r.URL == "" {
		attrs = append(attrs, slog.String("host", r.Host), slog.Int("port", r.Port))
	}
	attrs = append(attrs, stringAttrs([2]string{"username", r.Username}, [2]string{"password", r.Password})...)
	if r.DB != 0 {
		attrs = append(attrs, slog.Int("db", r.DB))
	}
	if r.TLS != nil {
		attrs = append(attrs, slog.Any("tls", r.TLS))
	}
	return slog.GroupValue(attrs...)
}

// stringAttrs are the name-value pairs given whose value is not empty, as
// slog attributes.
func stringAttrs(fields ...[2]string) []slog.Attr {
	var attrs []slog.Attr
	for _, f := range fields {
		if f[1] != "" {
			attrs = append(attrs, slog.String(f[0], f[1]))
		}
	}
	return attrs
}

// Format formats t as fmt formats a struct, for every verb, but with its
// private key shown as xxxxx.
func (t TLS) Format(f fmt.State, verb rune) {
	type tlsOptions TLS // the same fields, without Format
	format(f, verb, tlsOptions(t.redacted()), "config.tlsOptions", "config.TLS")
}

// String is t as %v formats it: its private key shown as xxxxx.
func (t TLS) String() string { return fmt.Sprint(t) }

// LogValue is t for log/slog, with the names the JSON gives its fields
// and its private key shown as xxxxx.
func (t TLS) LogValue() slog.Value {
	r := t.redacted()
	attrs := stringAttrs([2]string{"ca", r.CA}, [2]string{"cert", r.Cert}, [2]string{"key", r.Key},
		[2]string{"caFile", r.CAFile}, [2]string{"certFile", r.CertFile}, [2]string{"keyFile", r.KeyFile},
		[2]string{"servername", r.ServerName})
	if r.InsecureSkipVerify {
		attrs = append(attrs, slog.Bool("rejectUnauthorized", false))
	}
	if r.Config != nil {
		attrs = append(attrs, slog.String("config", "*tls.Config"))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes t as encoding/json would (the Go field names), but
// with its private key shown as xxxxx, and Config, which encoding/json
// cannot encode, as "*tls.Config" when set.
func (t TLS) MarshalJSON() ([]byte, error) {
	type tlsOptions TLS // the same fields, without MarshalJSON
	var v struct {
		tlsOptions
		Config *string
	}
	v.tlsOptions = tlsOptions(t.redacted())
	if t.Config != nil {
		s := "*tls.Config"
		v.Config = &s
	}
	return json.Marshal(v)
}

// MarshalJSON encodes c as encoding/json would (the Go field names), but
// with its password shown as xxxxx: for showing a configuration, not for
// storing it.
func (c Connection) MarshalJSON() ([]byte, error) {
	type connection Connection // the same fields, without MarshalJSON
	return json.Marshal(connection(c.redacted()))
}

// LogValue is c for log/slog, with the names the JSON gives its fields and
// every connection's password shown as xxxxx.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", c.Type)}
	if c.Namespace != "" {
		attrs = append(attrs, slog.String("namespace", c.Namespace))
	}
	if len(c.Connections) > 0 {
		conns := make([]slog.Attr, len(c.Connections))
		for i, conn := range c.Connections {
			conns[i] = slog.Any(strconv.Itoa(i), conn)
		}
		attrs = append(attrs, slog.Attr{Key: "connections", Value: slog.GroupValue(conns...)})
	}
	o := c.LockOptions
	switch c.Type {
	case Redis:
		attrs = append(attrs, slog.Group("lockOptions",
			slog.Float64("driftFactor", o.DriftFactor), slog.Int("retryCount", o.RetryCount),
			slog.Duration("retryDelay", o.RetryDelay), slog.Duration("retryJitter", o.RetryJitter),
			slog.Duration("nodeTimeout", o.NodeTimeout), slog.Duration("restartDelay", o.RestartDelay),
			slog.Bool("fencing", o.Fencing), slog.Int("replicaAcks", o.ReplicaAcks),
			slog.Bool("requireNoEviction", o.RequireNoEviction)))
	default:
		attrs = append(attrs, slog.Int("retry", c.Retry), slog.Duration("delay", c.Delay))
		if o.Fencing {
			attrs = append(attrs, slog.Group("lockOptions", slog.Bool("fencing", true)))
		}
	}
	return slog.GroupValue(attrs...)
}

// Format formats c as fmt formats a struct, for every verb, but with the
// passwords and private keys of its connections shown as xxxxx (a Config
// inside another value printed with %s or %q is printed field by field,
// which would show them otherwise).
func (c Config) Format(f fmt.State, verb rune) {
	type config Config // the same fields, without Format
	r := config(c)
	r.Connections = make([]Connection, len(c.Connections))
	for i, conn := range c.Connections {
		r.Connections[i] = conn.redacted()
	}
	format(f, verb, r, "config.config", "config.Config")
}

// String is c as %v formats it: passwords and private keys shown as xxxxx.
func (c Config) String() string { return fmt.Sprint(c) }

// format prints v (a value of a type without methods, holding no secret
// any more) with the verb and flags f was given; %#v names the type as
// real rather than as plain.
func format(f fmt.State, verb rune, v any, plain, real string) {
	s := fmt.Sprintf(fmt.FormatString(f, verb), v)
	if verb == 'v' && f.Flag('#') {
		if rest, ok := strings.CutPrefix(s, plain); ok {
			s = real + rest
		}
	}
	_, _ = io.WriteString(f, s)
}
