package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leverege/lock/config"
)

func TestParseShapes(t *testing.T) {
	local := []config.Connection{{Host: "127.0.0.1", Port: 6379}}
	redisDefaults := config.DefaultLockOptions()
	for _, tc := range []struct {
		name string
		json string
		want config.Config
	}{
		{
			"README redis",
			`{"type":"redis","connection":{"host":"127.0.0.1","port":6379},"lockOptions":{"driftFactor":0.01,"retryCount":0,"retryDelay":200,"retryJitter":100}}`,
			config.Config{Type: "redis", Connections: local, LockOptions: config.LockOptions{
				DriftFactor: 0.01, RetryCount: 0, RetryDelay: 200 * time.Millisecond, RetryJitter: 100 * time.Millisecond, NodeTimeout: 50 * time.Millisecond,
			}},
		},
		{
			"README inMemory",
			`{"type":"inMemory","retry":0,"delay":100}`,
			config.Config{Type: "inMemory", Retry: 0, Delay: 100 * time.Millisecond},
		},
		{
			"inMemory with namespace",
			`{"type":"inMemory","namespace":"myApp","retry":-1,"delay":5}`,
			config.Config{Type: "inMemory", Namespace: "myApp", Retry: -1, Delay: 5 * time.Millisecond},
		},
		{
			"create options shape",
			`{"namespace":"test","lockConfig":{"type":"inMemory","retry":0,"delay":100}}`,
			config.Config{Type: "inMemory", Namespace: "test", Delay: 100 * time.Millisecond},
		},
		{
			"create options: inner namespace when outer is absent",
			`{"lockConfig":{"type":"inMemory","namespace":"inner"}}`,
			config.Config{Type: "inMemory", Namespace: "inner", Delay: 100 * time.Millisecond},
		},
		{
			"create options: outer namespace wins",
			`{"namespace":"outer","lockConfig":{"type":"inMemory","namespace":"inner"}}`,
			config.Config{Type: "inMemory", Namespace: "outer", Delay: 100 * time.Millisecond},
		},
		{
			"lockConfig as a JSON string",
			`{"namespace":"n","lockConfig":"{\"type\":\"redis\",\"connection\":{}}"}`,
			config.Config{Type: "redis", Namespace: "n", Connections: local, LockOptions: redisDefaults},
		},
		{
			"defaults for absent options",
			`{"type":"redis","connection":{"host":"10.1.2.3"}}`,
			config.Config{Type: "redis", Connections: []config.Connection{{Host: "10.1.2.3", Port: 6379}}, LockOptions: redisDefaults},
		},
		{
			"zero means zero",
			`{"type":"redis","connection":{},"lockOptions":{"driftFactor":0,"retryCount":0,"retryDelay":0,"retryJitter":0}}`,
			config.Config{Type: "redis", Connections: local, LockOptions: config.LockOptions{NodeTimeout: 50 * time.Millisecond}},
		},
		{
			"multi-master with everything",
			`{"type":"redis","connections":[
				{"host":"a","port":7000,"username":"u","password":"p","db":2,"tls":true},
				{"url":"rediss://:pw@b:7001/3"},
				{"url":"redis://c"}],
			  "lockOptions":{"nodeTimeout":200,"retryDelay":12.5,"fencing":true,"replicaAcks":1,"requireNoEviction":true}}`,
			config.Config{Type: "redis", Connections: []config.Connection{
				{Host: "a", Port: 7000, Username: "u", Password: "p", DB: 2, TLS: &config.TLS{}},
				{URL: "rediss://:pw@b:7001/3"},
				{URL: "redis://c"},
			}, LockOptions: config.LockOptions{DriftFactor: 0.01, RetryCount: 10, RetryDelay: 12500 * time.Microsecond, RetryJitter: 100 * time.Millisecond, NodeTimeout: 200 * time.Millisecond, Fencing: true, ReplicaAcks: 1, RequireNoEviction: true}},
		},
		{"empty object is the in-memory default", `{}`, *config.Default()},
		{"in-memory with fencing", `{"type":"inMemory","lockOptions":{"fencing":true}}`,
			config.Config{Type: "inMemory", Delay: 100 * time.Millisecond, LockOptions: config.LockOptions{Fencing: true}}},
		{"only a namespace", `{"namespace":"x"}`, config.Config{Type: "inMemory", Namespace: "x", Delay: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tc.json))
			if err != nil {
				t.Fatalf("Parse(%q) err = %v, want nil", tc.json, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("Parse(%q) =\n%#v\nwant\n%#v", tc.json, *got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Parse(%q).Validate() = %v, want nil", tc.json, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		json string
		want string // the error must contain this (the field's name)
	}{
		{``, "empty"},
		{`null`, "empty"},
		{`[1]`, "want a JSON object"},
		{`{"type":`, "invalid JSON"},
		{`{"type":"redis"}{}`, "after the JSON object"},
		{`{"type":"Redis","connection":{}}`, `type: unknown type "Redis"`},
		{`{"type":"memory"}`, `type: unknown type "memory"`},
		{`{"type":"redis"}`, "connection: missing"},
		{`{"type":"redis","connections":[]}`, "connections: empty"},
		{`{"connection":{}}`, "type: missing"},
		{`{"type":"inMemory","connection":{}}`, `connection: "inMemory" takes no connection`},
		{`{"type":"inMemory","connections":[{}]}`, `connections: "inMemory" takes no connection`},
		{`{"type":"inMemory","lockOptions":{"fencing":true,"retryCount":3}}`, `lockOptions.retryCount: "inMemory" takes`},
		{`{"type":"redis","connection":{},"retry":1}`, "retry/delay"},
		{`{"type":"redis","connection":{},"connections":[{}]}`, "not both"},
		{`{"type":"redis","connection":{"hots":"x"}}`, `connection.hots: unknown field`},
		{`{"typo":1}`, `typo: unknown field`},
		{`{"type":"redis","connection":{"port":"6379"}}`, "connection.port: want an integer, got string"},
		{`{"type":"redis","connection":{},"lockOptions":{"fencing":"yes"}}`, "lockOptions.fencing: want true or false, got string"},
		{`{"type":"redis","connection":{},"lockOptions":{"replicaAcks":-1}}`, "lockOptions.replicaAcks: -1 must not be negative"},
		{`{"type":"redis","connection":{"username":"u"}}`, `connection.password: missing: username "u" needs a password`},
		{`{"type":"redis","connection":{"host":"h:1"}}`, `connection.host: "h:1" is not a host name or address`},
		{`{"type":"redis","connection":{"url":"redis://u:p@h:1:2"}}`, `connection.url: "redis://u:xxxxx@h:1:2"`},
		{`{"type":"redis","connection":{},"lockOptions":{"replicaAcks":1}}`, "lockOptions.nodeTimeout: 50ms is too short for lockOptions.replicaAcks: at least 200ms"},
		{`{"type":"redis","connection":{},"lockOptions":{"replicaAcks":"1"}}`, "lockOptions.replicaAcks: want an integer, got string"},
		{`{"type":"inMemory","lockOptions":{"requireNoEviction":true}}`, `lockOptions.requireNoEviction: "inMemory" takes`},
		{`{"type":"redis","connection":{"port":1.5}}`, "connection.port: want an integer, got number 1.5"},
		{`{"type":"redis","connections":[{},{"prot":1}]}`, "connections[1].prot: unknown field"},
		{`{"type":"redis","connection":{},"lockOptions":{"retrycount":1}}`, `lockOptions.retrycount: unknown field: did you mean "retryCount"?`},
		{`{"Type":"redis"}`, `Type: unknown field: did you mean "type"?`},
		{`{"lockConfig":{"type":"redis","connection":{"Host":"h"}}}`, `lockConfig.connection.Host: unknown field: did you mean "host"?`},
		{`{"type":"redis","connection":{},"lockOptions":{"retryJitter":5e12}}`, "lockOptions.retryJitter"},
		{`{"type":"redis","connection":{},"lockOptions":{"nodeTimeout":86400001}}`, "lockOptions.nodeTimeout"},
		{`{"type":"redis","connection":{"port":0}}`, "connection.port"},
		{`{"type":"redis","connection":{"port":65536}}`, "connection.port"},
		{`{"type":"redis","connection":{"host":""}}`, "connection.host"},
		{`{"type":"redis","connection":{"db":-1}}`, "connection.db"},
		{`{"type":"redis","connections":[{},{"port":-3}]}`, "connections[1].port"},
		{`{"type":"redis","connection":{"url":"http://x"}}`, "connection.url"},
		{`{"type":"redis","connection":{"url":"redis://"}}`, "connection.url"},
		{`{"type":"redis","connection":{"url":"redis://h:99999"}}`, "connection.url"},
		{`{"type":"redis","connection":{"url":"redis://h/x"}}`, "connection.url"},
		{`{"type":"redis","connection":{"url":"redis://h","port":1}}`, "connection.url"},
		{`{"type":"redis","connection":{"url":"::"}}`, "connection.url"},
		{`{"type":"redis","connection":{},"lockOptions":{"driftFactor":1}}`, "lockOptions.driftFactor"},
		{`{"type":"redis","connection":{},"lockOptions":{"driftFactor":-0.1}}`, "lockOptions.driftFactor"},
		{`{"type":"redis","connection":{},"lockOptions":{"retryDelay":-1}}`, "lockOptions.retryDelay"},
		{`{"type":"redis","connection":{},"lockOptions":{"retryJitter":-1}}`, "lockOptions.retryJitter"},
		{`{"type":"redis","connection":{},"lockOptions":{"nodeTimeout":0}}`, "lockOptions.nodeTimeout"},
		{`{"type":"redis","connection":{},"lockOptions":{"retryCount":1.5}}`, "lockOptions.retryCount"},
		{`{"type":"redis","connection":{},"lockOptions":{"retryCount":"3"}}`, "lockOptions.retryCount"},
		{`{"type":"redis","connection":{},"lockOptions":{"retryDelay":1e300}}`, "lockOptions.retryDelay"},
		{`{"type":"inMemory","delay":-5}`, "delay"},
		{`{"type":"inMemory","retry":true}`, "retry"},
		{`{"type":7}`, "type"},
		{`{"lockConfig":5}`, "lockConfig"},
		{`{"lockConfig":{"type":"redis"}}`, "lockConfig.connection"},
		{`{"lockConfig":{"type":"redis","connection":{"port":0}}}`, "lockConfig.connection.port"},
		{`{"lockConfig":"{\"type\":\"x\"}"}`, "lockConfig.type"},
		{`{"lockConfig":{"lockConfig":{}}}`, "lockConfig.lockConfig: unknown field"},
		{`{"type":"inMemory","lockConfig":{}}`, "not both"},
	} {
		got, err := config.Parse([]byte(tc.json))
		switch {
		case err == nil:
			t.Errorf("Parse(%q) = %+v, want an error containing %q", tc.json, got, tc.want)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("Parse(%q) err = %v, want it to contain %q", tc.json, err, tc.want)
		case !strings.HasPrefix(err.Error(), "config: "):
			t.Errorf("Parse(%q) err = %v, want it to start with \"config: \"", tc.json, err)
		case got != nil:
			t.Errorf("Parse(%q) = %+v with err %v, want nil", tc.json, got, err)
		}
	}
}

func TestValidateGoConfig(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
	c := &config.Config{Type: config.Redis, Connections: []config.Connection{{Host: "h", Port: 1}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "nodeTimeout") {
		t.Errorf("Validate() with a zero NodeTimeout = %v, want an error naming nodeTimeout", err)
	}
	c.LockOptions = config.DefaultLockOptions()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() with the default lock options = %v, want nil", err)
	}
	c.LockOptions.RetryDelay = 25 * time.Hour
	const want = "config: lockOptions.retryDelay: 25h0m0s is more than the 24h0m0s allowed"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() with a 25h retryDelay = %v, want %q", err, want)
	}
}

func TestAddr(t *testing.T) {
	for _, tc := range []struct {
		conn config.Connection
		want string
	}{
		{config.Connection{Host: "h", Port: 1}, "h:1"},
		{config.Connection{URL: "redis://b"}, "b:6379"},
		{config.Connection{URL: "rediss://u:pw@b:7/2"}, "b:7"},
		{config.Connection{Host: "::1", Port: 7}, "[::1]:7"},
	} {
		if got := tc.conn.Addr(); got != tc.want {
			t.Errorf("%+v.Addr() = %q, want %q", tc.conn, got, tc.want)
		}
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts is valid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"redis","connection":{"host":"127.0.0.1","port":6379},"lockOptions":{"driftFactor":0.01,"retryCount":0,"retryDelay":200,"retryJitter":100}}`,
		`{"type":"inMemory","retry":0,"delay":100}`,
		`{"namespace":"test","lockConfig":{"type":"inMemory"}}`,
		`{"lockConfig":"{\"type\":\"redis\",\"connections\":[{\"url\":\"redis://h:1/2\"}]}"}`,
		`{}`, `[]`, `null`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted %q but Validate says %v", data, err)
		}
	})
}
