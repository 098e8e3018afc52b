package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// The JSON as written: pointers tell an absent option (default) from one
// given as zero (zero).
type rawConfig struct {
	Type        *string          `json:"type"`
	Namespace   *string          `json:"namespace"`
	Connection  *rawConnection   `json:"connection"`
	Connections *[]rawConnection `json:"connections"`
	LockOptions *rawLockOptions  `json:"lockOptions"`
	Retry       *int             `json:"retry"`
	Delay       *float64         `json:"delay"`
	// Only in the create-options shape: the lock config nested, as an object
	// or as a string holding its JSON (as LOCK_CONFIG does).
	LockConfig json.RawMessage `json:"lockConfig"`
}

type rawConnection struct {
	Host     *string `json:"host"`
	Port     *int    `json:"port"`
	Username string  `json:"username"`
	Password string  `json:"password"`
	DB       int     `json:"db"`
	// true, false or an object (rawTLS): decoded by build, which names it.
	TLS json.RawMessage `json:"tls"`
	URL string          `json:"url"`
}

// rawTLS is a connection's "tls" object, with Node's tls.connect names.
type rawTLS struct {
	CA                 string `json:"ca"`
	Cert               string `json:"cert"`
	Key                string `json:"key"`
	CAFile             string `json:"caFile"`
	CertFile           string `json:"certFile"`
	KeyFile            string `json:"keyFile"`
	ServerName         string `json:"servername"`
	RejectUnauthorized *bool  `json:"rejectUnauthorized"` // default true
}

type rawLockOptions struct {
	DriftFactor  *float64 `json:"driftFactor"`
	RetryCount   *int     `json:"retryCount"`
	RetryDelay   *float64 `json:"retryDelay"`
	RetryJitter  *float64 `json:"retryJitter"`
	NodeTimeout  *float64 `json:"nodeTimeout"`
	RestartDelay *float64 `json:"restartDelay"`
	Fencing      *bool    `json:"fencing"`
	ReplicaAcks  *int     `json:"replicaAcks"`
	NoEviction   *bool    `json:"requireNoEviction"`
}

// Parse reads a lock configuration in any of the shapes the package
// documentation shows, applies the defaults for absent options and
// validates the result. Errors name the offending field.
func Parse(data []byte) (*Config, error) {
	var top rawConfig
	if err := decode(data, &top, ""); err != nil {
		return nil, err
	}
	if err := checkKeys(data, "", true); err != nil {
		return nil, err
	}
	if top.LockConfig == nil {
		return top.build("")
	}
	if top.Type != nil || top.Connection != nil || top.Connections != nil || top.LockOptions != nil || top.Retry != nil || top.Delay != nil {
		return nil, fieldErr("lockConfig", "give the lock's settings either inside lockConfig or beside it, not both")
	}
	inner := []byte(top.LockConfig)
	var s string
	if json.Unmarshal(inner, &s) == nil { // a string holding the JSON
		inner = []byte(s)
	}
	var raw rawConfig
	if err := decode(inner, &raw, "lockConfig."); err != nil {
		return nil, err
	}
	if err := checkKeys(inner, "lockConfig.", false); err != nil {
		return nil, err
	}
	cfg, err := raw.build("lockConfig.")
	if err != nil {
		return nil, err
	}
	if top.Namespace != nil && *top.Namespace != "" {
		cfg.Namespace = *top.Namespace
	}
	return cfg, nil
}

// decode unmarshals one JSON object strictly: wrong types and trailing data
// are errors that name the field (after prefix).
func decode(data []byte, v *rawConfig, prefix string) error {
	where := "config"
	if prefix != "" {
		where = "config: " + prefix[:len(prefix)-1]
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return fmt.Errorf("%s: empty: want a JSON object", where)
	}
	// Unknown fields are left to checkKeys, which names them with their path.
	d := json.NewDecoder(bytes.NewReader(data))
	err := d.Decode(v)
	if err == nil && d.Decode(new(json.RawMessage)) != io.EOF {
		return fmt.Errorf("%s: unexpected data after the JSON object", where)
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syntax):
		return fmt.Errorf("%s: invalid JSON at byte %d: %v", where, syntax.Offset, err)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("%s: want a JSON object, got %s", where, typ.Value)
	case errors.As(err, &typ):
		return fieldErr(prefix+typ.Field, "want %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: invalid JSON: unexpected end", where)
	default:
		return fmt.Errorf("%s: %s", where, strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "ptr":
		return "an object"
	}
	return goKind
}

// redisField names the first setting given that only a "redis" lock takes
// ("" for none): connection, connections, or a lockOptions field other than
// fencing.
func (r *rawConfig) redisField() string {
	switch {
	case r.Connection != nil:
		return "connection"
	case r.Connections != nil:
		return "connections"
	case r.LockOptions == nil:
		return ""
	}
	o := r.LockOptions
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"driftFactor", o.DriftFactor != nil}, {"retryCount", o.RetryCount != nil},
		{"retryDelay", o.RetryDelay != nil}, {"retryJitter", o.RetryJitter != nil},
		{"nodeTimeout", o.NodeTimeout != nil}, {"restartDelay", o.RestartDelay != nil},
		{"replicaAcks", o.ReplicaAcks != nil}, {"requireNoEviction", o.NoEviction != nil},
	} {
		if f.set {
			return "lockOptions." + f.name
		}
	}
	return ""
}

func (r *rawConfig) build(prefix string) (*Config, error) {
	cfg := &Config{}
	if r.Namespace != nil {
		cfg.Namespace = *r.Namespace
	}
	// lockOptions.fencing alone applies to both types; the rest is Redis'.
	redisField := r.redisField()
	redisFields := redisField != ""
	memFields := r.Retry != nil || r.Delay != nil
	switch {
	case r.Type != nil:
		cfg.Type = *r.Type
	case redisFields:
		return nil, fieldErr(prefix+"type", "missing: connection settings need \"type\": %q", Redis)
	default:
		cfg.Type = InMemory
	}
	switch {
	case cfg.Type == InMemory && redisFields:
		return nil, fieldErr(prefix+redisField, "%q takes no connection, and no lockOptions but fencing (is the type meant to be %q?)", InMemory, Redis)
	case cfg.Type == Redis && memFields:
		return nil, fieldErr(prefix+"type", "%q takes lockOptions.retryCount/retryDelay, not retry/delay", Redis)
	case r.Connection != nil && r.Connections != nil:
		return nil, fieldErr(prefix+"connection", "give either connection or connections, not both")
	}
	switch cfg.Type {
	case Redis:
		cfg.LockOptions = DefaultLockOptions()
	case InMemory:
		cfg.Retry, cfg.Delay = DefaultRetry, DefaultDelay
	}
	if r.Retry != nil {
		cfg.Retry = *r.Retry
	}
	var err error
	if r.Delay != nil {
		if cfg.Delay, err = millis(prefix+"delay", *r.Delay); err != nil {
			return nil, err
		}
	}
	if r.Connection != nil {
		c, err := r.Connection.build(prefix + "connection")
		if err != nil {
			return nil, err
		}
		cfg.Connections = []Connection{c}
	}
	if r.Connections != nil {
		if len(*r.Connections) == 0 {
			return nil, fieldErr(prefix+"connections", "empty: give at least one master")
		}
		for i, rc := range *r.Connections {
			c, err := rc.build(fmt.Sprintf("%sconnections[%d]", prefix, i))
			if err != nil {
				return nil, err
			}
			cfg.Connections = append(cfg.Connections, c)
		}
	}
	if o := r.LockOptions; o != nil {
		lo := &cfg.LockOptions
		p := prefix + "lockOptions."
		if o.DriftFactor != nil {
			lo.DriftFactor = *o.DriftFactor
		}
		if o.RetryCount != nil {
			lo.RetryCount = *o.RetryCount
		}
		if o.Fencing != nil {
			lo.Fencing = *o.Fencing
		}
		if o.ReplicaAcks != nil {
			lo.ReplicaAcks = *o.ReplicaAcks
		}
		if o.NoEviction != nil {
			lo.RequireNoEviction = *o.NoEviction
		}
		for _, d := range []struct {
			name string
			in   *float64
			out  *time.Duration
		}{
			{"retryDelay", o.RetryDelay, &lo.RetryDelay},
			{"retryJitter", o.RetryJitter, &lo.RetryJitter},
			{"nodeTimeout", o.NodeTimeout, &lo.NodeTimeout},
			{"restartDelay", o.RestartDelay, &lo.RestartDelay},
		} {
			if d.in != nil {
				if *d.out, err = millis(p+d.name, *d.in); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		if prefix != "" {
			return nil, fmt.Errorf("config: %s%s", prefix, err.Error()[len("config: "):])
		}
		return nil, err
	}
	return cfg, nil
}

func (r *rawConnection) build(field string) (Connection, error) {
	c := Connection{Username: r.Username, Password: r.Password, DB: r.DB, URL: r.URL}
	var err error
	if c.TLS, err = buildTLS(r.TLS, field+".tls"); err != nil {
		return c, err
	}
	if r.URL == "" {
		c.Host, c.Port = DefaultHost, DefaultPort
	}
	if r.Host != nil {
		c.Host = *r.Host
	}
	if r.Port != nil {
		c.Port = *r.Port
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("config: %s.%w", field, err)
	}
	return c, nil
}

// buildTLS reads a connection's "tls": true (TLS with the defaults),
// false or null (none), or an object of TLS options.
func buildTLS(data json.RawMessage, field string) (*TLS, error) {
	var on bool
	switch data := bytes.TrimSpace(data); {
	case len(data) == 0 || bytes.Equal(data, []byte("null")):
		return nil, nil
	case json.Unmarshal(data, &on) == nil:
		if on {
			return &TLS{}, nil
		}
		return nil, nil
	case data[0] != '{':
		return nil, fieldErr(field, "want true, false or an object, got %s", jsonValueKind(data[0]))
	}
	// Unknown names were refused by checkKeys; what is left is a field of
	// the wrong type.
	var r rawTLS
	if err := json.Unmarshal(data, &r); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, fieldErr(field+"."+typ.Field, "want %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return nil, fieldErr(field, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	t := &TLS{CA: r.CA, Cert: r.Cert, Key: r.Key, CAFile: r.CAFile, CertFile: r.CertFile, KeyFile: r.KeyFile, ServerName: r.ServerName}
	if r.RejectUnauthorized != nil {
		t.InsecureSkipVerify = !*r.RejectUnauthorized
	}
	return t, nil
}

// jsonValueKind names the kind of JSON value that starts with c.
func jsonValueKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// millis turns a JSON millisecond count into a Duration.
func millis(field string, ms float64) (time.Duration, error) {
	if ms < 0 {
		return 0, fieldErr(field, "%v ms must not be negative", ms)
	}
	if ms > float64(MaxDuration/time.Millisecond) {
		return 0, fieldErr(field, "%v ms is more than the %v allowed", ms, MaxDuration)
	}
	return time.Duration(math.Round(ms * float64(time.Millisecond))), nil
}

// The field names of each object, spelt exactly. encoding/json would match
// them regardless of case; the original (JavaScript) does not, so neither
// do we.
var (
	configKeys      = []string{"type", "namespace", "connection", "connections", "lockOptions", "retry", "delay"}
	connectionKeys  = []string{"host", "port", "username", "password", "db", "tls", "url"}
	tlsKeys         = []string{"ca", "cert", "key", "caFile", "certFile", "keyFile", "servername", "rejectUnauthorized"}
	lockOptionsKeys = []string{"driftFactor", "retryCount", "retryDelay", "retryJitter", "nodeTimeout", "restartDelay", "fencing", "replicaAcks", "requireNoEviction"}
)

// checkKeys rejects any field name that is not spelt exactly as above,
// naming it with its path. data has already decoded, so its shape is right.
func checkKeys(data []byte, prefix string, top bool) error {
	allowed := configKeys
	if top {
		allowed = append(allowed[:len(allowed):len(allowed)], "lockConfig")
	}
	fields, err := objectKeys(data, prefix, allowed)
	if err != nil {
		return err
	}
	if c, ok := fields["connection"]; ok {
		if err := checkConnectionKeys(c, prefix+"connection."); err != nil {
			return err
		}
	}
	if cs, ok := fields["connections"]; ok {
		var list []json.RawMessage
		_ = json.Unmarshal(cs, &list)
		for i, c := range list {
			if err := checkConnectionKeys(c, fmt.Sprintf("%sconnections[%d].", prefix, i)); err != nil {
				return err
			}
		}
	}
	if lo, ok := fields["lockOptions"]; ok {
		if _, err := objectKeys(lo, prefix+"lockOptions.", lockOptionsKeys); err != nil {
			return err
		}
	}
	return nil
}

// checkConnectionKeys checks the names in a connection object, and in its
// tls object if it has one (true and false have none).
func checkConnectionKeys(data []byte, prefix string) error {
	fields, err := objectKeys(data, prefix, connectionKeys)
	if err != nil {
		return err
	}
	if t, ok := fields["tls"]; ok {
		if _, err := objectKeys(t, prefix+"tls.", tlsKeys); err != nil {
			return err
		}
	}
	return nil
}

// objectKeys returns the fields of a JSON object (none for null), and an
// error for the first name not in allowed.
func objectKeys(data []byte, prefix string, allowed []string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(data, &fields)
	for name := range fields {
		if slices.Contains(allowed, name) {
			continue
		}
		for _, a := range allowed {
			if strings.EqualFold(a, name) {
				return nil, fieldErr(prefix+name, "unknown field: did you mean %q?", a)
			}
		}
		return nil, fieldErr(prefix+name, "unknown field")
	}
	return fields, nil
}
