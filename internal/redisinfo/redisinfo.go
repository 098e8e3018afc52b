// Package redisinfo reads the reply of Redis's INFO command and judges what
// it means for a lock: whether a master can evict lock keys, how far its
// replicas lag. It is pure: it parses text and decides, and talks to no
// server, so the library and the lock command judge alike.
package redisinfo

import (
	"net"
	"strconv"
	"strings"
)

// Info is a parsed INFO reply. The zero Info is an empty reply: every
// lookup reports the field absent.
type Info struct {
	// Sections maps each section's name, lower-cased as INFO takes it
	// ("server", "replication", "memory"), to its fields by name. Fields
	// before any "# Section" header are under "".
	Sections map[string]map[string]string

	// fields is every field of every section by name. Names are unique
	// across sections in every Redis version; should one repeat, the first
	// wins, so that a lookup does not depend on map order.
	fields map[string]string
}

// Parse parses the text of an INFO reply: "# Section" headers and
// "name:value" lines, separated by CRLF or LF. Values keep everything after
// the first colon ("slave0:ip=::1,port=6380,..." is the field "slave0").
// Blank lines and lines without a colon are ignored: INFO has none that
// carry data, and a newer server's surprises must not make the rest
// unreadable.
func Parse(text string) Info {
	in := Info{Sections: map[string]map[string]string{}, fields: map[string]string{}}
	section := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if h, ok := strings.CutPrefix(line, "#"); ok {
			section = strings.ToLower(strings.TrimSpace(h))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := in.Sections[section]
		if fs == nil {
			fs = map[string]string{}
			in.Sections[section] = fs
		}
		if _, dup := fs[name]; !dup {
			fs[name] = value
		}
		if _, dup := in.fields[name]; !dup {
			in.fields[name] = value
		}
	}
	return in
}

// Get returns the field name of any section, and whether the reply had it.
func (in Info) Get(name string) (string, bool) {
	v, ok := in.fields[name]
	return v, ok
}

// Int returns the field name as an integer; ok is false when the reply
// lacks it or it is not a decimal integer. Callers must tell "absent" from
// 0: a server that hid a field has not said it is 0.
func (in Info) Int(name string) (n int64, ok bool) {
	v, ok := in.fields[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// Replica is one replica as its master lists it in INFO replication
// ("slave0:ip=10.0.0.2,port=6379,state=online,offset=1234,lag=0").
type Replica struct {
	Addr  string // ip:port the replica announced
	State string // "online" once synced; "wait_bgsave", "send_bulk" ... before
	// Offset is the replication offset the replica has acknowledged, or -1
	// when the line has none (a replica still waiting for its first sync).
	Offset int64
}

// Replicas returns the replicas a master lists, in INFO's order (slave0,
// slave1, ...); none for a replica or a master without any.
func (in Info) Replicas() []Replica {
	var out []Replica
	for i := 0; ; i++ {
		line, ok := in.fields["slave"+strconv.Itoa(i)]
		if !ok {
			return out
		}
		r := Replica{Offset: -1}
		var ip, port string
		for kv := range strings.SplitSeq(line, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ip":
				ip = v
			case "port":
				port = v
			case "state":
				r.State = v
			case "offset":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					r.Offset = n
				}
			}
		}
		if ip != "" || port != "" {
			r.Addr = net.JoinHostPort(ip, port)
		}
		out = append(out, r)
	}
}

// MaxReplicaLag returns how many bytes of the replication stream the
// furthest-behind replica has yet to acknowledge: master_repl_offset minus
// its offset, the largest over the replicas. A lock granted by this master
// and not yet on a replica is lost if that replica is promoted, so this is
// the window a failover would forget. ok is false when the reply is not a
// master's with at least one replica whose offset it gives: there is no
// lag to speak of, which is not a lag of 0.
func (in Info) MaxReplicaLag() (lag int64, ok bool) {
	if role, _ := in.Get("role"); role != "master" {
		return 0, false
	}
	top, ok := in.Int("master_repl_offset")
	if !ok {
		return 0, false
	}
	ok = false
	for _, r := range in.Replicas() {
		if r.Offset < 0 {
			continue
		}
		if d := top - r.Offset; !ok || d > lag {
			lag, ok = d, true
		}
	}
	return lag, ok
}

// NoEviction is the maxmemory-policy under which Redis never evicts a key:
// a write that needs memory fails with OOM instead.
const NoEviction = "noeviction"

// Evicts reports whether a master with this maxmemory-policy and maxmemory
// (bytes; 0 is no limit) can evict a lock key when memory runs out. Every
// lock key has a ttl, so the volatile-* policies (volatile-lru,
// volatile-lfu, volatile-random, volatile-ttl) can pick it as well as the
// allkeys-* ones. An evicted lock key is a lock released early on that
// master, behind its holder's back: another client can then take the key
// there, and with too many such masters, take the lock.
//
// Without a limit nothing is evicted, whatever the policy. Only noeviction
// is safe under a limit: a policy this package does not know (a newer
// Redis's, a fork's) is taken to evict, since the cost of a wrong "safe" is
// a broken lock and the cost of a wrong "evicts" is a warning. The policy
// is compared without regard to case, as redis-server reads it.
func Evicts(policy string, maxmemory int64) bool {
	return maxmemory > 0 && !strings.EqualFold(policy, NoEviction)
}
