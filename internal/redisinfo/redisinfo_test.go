package redisinfo_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/leverege/lock/internal/redisinfo"
)

// A master's INFO as Redis 7.0 sends it (trimmed), with CRLF line ends.
const masterInfo = "# Server\r\n" +
	"redis_version:7.0.15\r\n" +
	"run_id:eee67a16634d4640291f0003d90354d294ed5fee\r\n" +
	"uptime_in_seconds:42\r\n" +
	"\r\n" +
	"# Memory\r\n" +
	"maxmemory:3145728\r\n" +
	"maxmemory_human:3.00M\r\n" +
	"maxmemory_policy:volatile-lru\r\n" +
	"\r\n" +
	"# Replication\r\n" +
	"role:master\r\n" +
	"connected_slaves:2\r\n" +
	"slave0:ip=127.0.0.1,port=6380,state=online,offset=1000,lag=0\r\n" +
	"slave1:ip=::1,port=6381,state=online,offset=880,lag=1\r\n" +
	"master_replid:de1f2825c7e77f38312ca7be75f28a8992bc911d\r\n" +
	"master_replid2:0000000000000000000000000000000000000000\r\n" +
	"master_repl_offset:1024\r\n"

func TestParse(t *testing.T) {
	in := redisinfo.Parse(masterInfo)
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"redis_version", "7.0.15", true},
		{"uptime_in_seconds", "42", true},
		{"maxmemory_policy", "volatile-lru", true},
		{"maxmemory_human", "3.00M", true},
		{"role", "master", true},
		{"slave1", "ip=::1,port=6381,state=online,offset=880,lag=1", true},
		{"master_link_status", "", false},
		{"Server", "", false},
		{"# Server", "", false},
	} {
		if got, ok := in.Get(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("Get(%q) = %q, %v, want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if got, want := slices.Sorted(maps.Keys(in.Sections)), []string{"memory", "replication", "server"}; !slices.Equal(got, want) {
		t.Errorf("Sections = %q, want %q", got, want)
	}
	if got := in.Sections["memory"]["maxmemory"]; got != "3145728" {
		t.Errorf(`Sections["memory"]["maxmemory"] = %q, want "3145728"`, got)
	}
	if _, ok := in.Sections["server"]["maxmemory"]; ok {
		t.Errorf(`Sections["server"] has maxmemory, which is in "memory"`)
	}
}

func TestParseOddText(t *testing.T) {
	for _, tc := range []struct {
		name, text, field, want string
		ok                      bool
	}{
		{"empty", "", "role", "", false},
		{"LF only", "# Replication\nrole:slave\nmaster_link_status:down\n", "master_link_status", "down", true},
		{"no header", "role:master", "role", "master", true},
		{"no final newline", "# Server\nrun_id:abc", "run_id", "abc", true},
		{"colon in value", "executable:/opt/a:b/redis-server\n", "executable", "/opt/a:b/redis-server", true},
		{"empty value", "config_file:\n", "config_file", "", true},
		{"line without colon", "garbage\nrole:master\n", "role", "master", true},
		{"first of a repeated name", "# A\nx:1\n# B\nx:2\n", "x", "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := redisinfo.Parse(tc.text).Get(tc.field)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Parse(%q).Get(%q) = %q, %v, want %q, %v", tc.text, tc.field, got, ok, tc.want, tc.ok)
			}
		})
	}
	var zero redisinfo.Info
	if v, ok := zero.Get("role"); ok {
		t.Errorf("Info{}.Get(role) = %q, true, want absent", v)
	}
	if _, ok := zero.MaxReplicaLag(); ok {
		t.Errorf("Info{}.MaxReplicaLag() ok, want not ok")
	}
}

func TestInt(t *testing.T) {
	in := redisinfo.Parse("a:12\nb:-1\nc:0\nd:1.5\ne:\nf:9223372036854775808\n")
	for _, tc := range []struct {
		name string
		want int64
		ok   bool
	}{
		{"a", 12, true},
		{"b", -1, true},
		{"c", 0, true},  // a real 0 ...
		{"z", 0, false}, // ... is not an absent field
		{"d", 0, false},
		{"e", 0, false},
		{"f", 0, false}, // overflows int64
	} {
		got, ok := in.Int(tc.name)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("Int(%q) = %d, %v, want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReplicas(t *testing.T) {
	got := redisinfo.Parse(masterInfo).Replicas()
	want := []redisinfo.Replica{
		{Addr: "127.0.0.1:6380", State: "online", Offset: 1000},
		{Addr: "[::1]:6381", State: "online", Offset: 880},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Replicas() = %+v, want %+v", got, want)
	}

	// A replica still syncing may lack an offset; numbering stops at the
	// first gap, as INFO numbers them densely.
	got = redisinfo.Parse("slave0:ip=10.0.0.2,port=6379,state=wait_bgsave\nslave2:ip=x,port=1,state=online,offset=5\n").Replicas()
	want = []redisinfo.Replica{{Addr: "10.0.0.2:6379", State: "wait_bgsave", Offset: -1}}
	if !slices.Equal(got, want) {
		t.Errorf("Replicas() = %+v, want %+v", got, want)
	}
	if got := redisinfo.Parse("role:slave\n").Replicas(); got != nil {
		t.Errorf("Replicas() of a replica = %+v, want none", got)
	}
}

func TestMaxReplicaLag(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want int64
		ok   bool
	}{
		{"largest of two", masterInfo, 1024 - 880, true},
		{"caught up", "role:master\nmaster_repl_offset:7\nslave0:ip=a,port=1,state=online,offset=7\n", 0, true},
		{"no replicas", "role:master\nconnected_slaves:0\nmaster_repl_offset:7\n", 0, false},
		{"offsets unknown", "role:master\nmaster_repl_offset:7\nslave0:ip=a,port=1,state=wait_bgsave\n", 0, false},
		{"one offset unknown", "role:master\nmaster_repl_offset:7\nslave0:ip=a,port=1,state=wait_bgsave\nslave1:ip=b,port=1,state=online,offset=3\n", 4, true},
		{"a replica", "role:slave\nmaster_repl_offset:7\nslave0:ip=a,port=1,state=online,offset=3\n", 0, false},
		{"no master offset", "role:master\nslave0:ip=a,port=1,state=online,offset=3\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := redisinfo.Parse(tc.text).MaxReplicaLag()
			if got != tc.want || ok != tc.ok {
				t.Errorf("MaxReplicaLag() = %d, %v, want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestEvicts(t *testing.T) {
	const limit = 3 << 20
	for _, tc := range []struct {
		policy    string
		maxmemory int64
		want      bool
	}{
		{"noeviction", limit, false},
		{"noeviction", 0, false},
		{"volatile-lru", limit, true},
		{"volatile-lfu", limit, true},
		{"volatile-random", limit, true},
		{"volatile-ttl", limit, true},
		{"allkeys-lru", limit, true},
		{"allkeys-lfu", limit, true},
		{"allkeys-random", limit, true},
		// No limit: nothing is evicted, whatever the policy.
		{"volatile-lru", 0, false},
		{"allkeys-lru", 0, false},
		// A policy not known today is taken to evict.
		{"volatile-newest", limit, true},
		{"", limit, true},
		{"NOEVICTION", limit, false}, // as a config file may spell it
	} {
		if got := redisinfo.Evicts(tc.policy, tc.maxmemory); got != tc.want {
			t.Errorf("Evicts(%q, %d) = %v, want %v", tc.policy, tc.maxmemory, got, tc.want)
		}
	}
}
