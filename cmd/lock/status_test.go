package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/redlock"
)

// The status tests run the built binary (TestMain's) against redis-server
// processes started for each test (redistest.StartServer), configured as
// each case needs: ACL users, replicas, maxmemory, TLS.

// statusConn is one entry of "connections" in the configuration.
type statusConn struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	DB       int    `json:"db,omitempty"`
	TLS      bool   `json:"tls,omitempty"`
	URL      string `json:"url,omitempty"`
}

// on is s's address as a connection.
func on(s *redistest.Server) statusConn { return statusConn{Host: "127.0.0.1", Port: s.Port()} }

// statusConfig is the JSON an operator would put in LOCK_CONFIG for conns,
// with restartDelay in ms (0: off).
func statusConfig(t *testing.T, restartDelayMs int64, conns ...statusConn) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type":        "redis",
		"connections": conns,
		"lockOptions": map[string]any{"restartDelay": restartDelayMs, "nodeTimeout": testNodeTimeout.Milliseconds()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func statusEnv(t *testing.T, restartDelayMs int64, conns ...statusConn) []string {
	t.Helper()
	return []string{lock.EnvVar + "=" + statusConfig(t, restartDelayMs, conns...)}
}

// runStatus runs the tool to its end (at most 30s).
func runStatus(t *testing.T, env []string, args ...string) result {
	t.Helper()
	p := command(env, args...)
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start lock %v: %v", args, err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p.wait(t, 30*time.Second)
}

// statusJSON runs lock status --json with args, wants exit status code, and
// decodes the report.
func statusJSON(t *testing.T, env []string, code int, args ...string) statusReport {
	t.Helper()
	r := runStatus(t, env, append([]string{"status", "--json"}, args...)...)
	if r.code != code {
		t.Fatalf("status --json %v: exit %d, want %d; stderr: %s", args, r.code, code, r.stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json %v: %v; output: %s", args, err, r.stdout)
	}
	return rep
}

// wantStatusError checks that r exited with code after one "lock: " line
// on stderr that contains want.
func wantStatusError(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "lock: ") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr = %q, want one line starting \"lock: \" with %q", r.stderr, want)
	}
}

// row returns the line of the first table (up to its blank line) that
// starts with addr, split into its columns (two spaces or more apart).
func row(t *testing.T, out, addr string) []string {
	t.Helper()
	head, _, _ := strings.Cut(out, "\n\n")
	for line := range strings.Lines(head) {
		if strings.HasPrefix(line, addr+" ") {
			return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		}
	}
	t.Fatalf("no row for %s in:\n%s", addr, out)
	return nil
}

// column is the cell of the column named name in the first table.
func column(t *testing.T, out, addr, name string) string {
	t.Helper()
	header := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), -1)
	i := slices.Index(header, name)
	r := row(t, out, addr)
	if i < 0 || i >= len(r) {
		t.Fatalf("no column %q in header %q / row %q", name, header, r)
	}
	return r[i]
}

// serverNow is s's TIME in ms, as the acquire script reads it.
func serverNow(t *testing.T, s *redistest.Server) int64 {
	t.Helper()
	v, err := redis.Int64s(s.Do(t.Context(), "TIME"))
	if err != nil || len(v) != 2 {
		t.Fatalf("TIME on %s = %v, %v", s.Addr(), v, err)
	}
	return v[0]*1000 + v[1]/1000
}

func info(t *testing.T, s *redistest.Server, field string) string {
	t.Helper()
	in, err := s.Info(t.Context(), "")
	if err != nil {
		t.Fatalf("INFO on %s: %v", s.Addr(), err)
	}
	return in[field]
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func TestStatus(t *testing.T) {
	t.Parallel()
	ss := []*redistest.Server{redistest.StartServer(t), redistest.StartServer(t), redistest.StartServer(t)}
	conns := []statusConn{on(ss[0]), on(ss[1]), on(ss[2])}
	env := statusEnv(t, 0, conns...)

	// All up, and a key held by the library under a namespace.
	cfg, err := config.Parse([]byte(statusConfig(t, 0, conns...)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := lock.Create(lock.Options{Namespace: "app", LockConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Destroy() })
	held, err := l.LockNs(t.Context(), "report", 20*time.Second)
	if err != nil {
		t.Fatalf("LockNs(report) err = %v", err)
	}
	// Lock returns at a quorum: let the third SET land too.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := 0
		for _, s := range ss {
			if v, err := redis.String(s.Do(t.Context(), "GET", "app:report")); err == nil && v == held.Value() {
				n++
			}
		}
		if n == len(ss) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key is on %d of 3 masters after 5s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}

	rep := statusJSON(t, env, exitOK, "--namespace", "app", "--key", "report")
	if rep.Backend != "redis" || rep.Key != "app:report" || rep.Up != 3 || rep.Quorum != 2 || !rep.QuorumOK {
		t.Errorf("status = backend %q key %q up %d quorum %d reachable %v, want redis app:report 3 2 true",
			rep.Backend, rep.Key, rep.Up, rep.Quorum, rep.QuorumOK)
	}
	if rep.KeyHeldOn == nil || *rep.KeyHeldOn != 3 {
		t.Errorf("status keyHeldOn = %v, want 3", rep.KeyHeldOn)
	}
	if rep.RestartProtection || rep.RestartDelayMs != 0 || len(rep.SameServer) != 0 {
		t.Errorf("status restart protection %v (%d ms), same server %+v, want off, 0, none", rep.RestartProtection, rep.RestartDelayMs, rep.SameServer)
	}
	if len(rep.Masters) != 3 {
		t.Fatalf("status has %d masters, want 3", len(rep.Masters))
	}
	for i, m := range rep.Masters {
		if m.Addr != ss[i].Addr() || !m.Up || m.Error != "" {
			t.Errorf("masters[%d] = %s up %v error %q, want %s up", i, m.Addr, m.Up, m.Error, ss[i].Addr())
		}
		if !strings.HasPrefix(str(m.Version), "7.") || str(m.Role) != "master" || len(str(m.RunID)) != 40 || len(str(m.ReplicationID)) != 40 {
			t.Errorf("masters[%d] version %s role %s runId %s replicationId %s, want 7.x, master, 40 hex digits each",
				i, str(m.Version), str(m.Role), str(m.RunID), str(m.ReplicationID))
		}
		if m.RTTMs == nil || *m.RTTMs <= 0 || m.ClockOffsetMs == nil || math.Abs(*m.ClockOffsetMs) > 1000 || m.UptimeSeconds == nil {
			t.Errorf("masters[%d] rtt %v clock offset %v uptime %v, want set (same host: the clocks agree)", i, m.RTTMs, m.ClockOffsetMs, m.UptimeSeconds)
		}
		if m.ConnectedReplicas == nil || *m.ConnectedReplicas != 0 || m.Replicas == nil || len(m.Replicas) != 0 || m.ReplicationLagBytes != nil {
			t.Errorf("masters[%d] replicas %v %v lag %v, want 0, [], null", i, m.ConnectedReplicas, m.Replicas, m.ReplicationLagBytes)
		}
		if m.Restart.State != restartOff {
			t.Errorf("masters[%d] restart %+v, want off", i, m.Restart)
		}
		if k := m.Key; k == nil || k.Exists == nil || !*k.Exists || str(k.Type) != "string" || str(k.Value) != held.Value() ||
			k.PTTLMs == nil || *k.PTTLMs <= 0 || *k.PTTLMs > 20000 {
			t.Errorf("masters[%d].key = %+v, want the lock's string %q with a pttl in (0, 20s]", i, k, held.Value())
		}
	}

	// The table.
	r := runStatus(t, env, "status", "--key", "absent")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("status: exit %d, stderr %q, want 0 and nothing", r.code, r.stderr)
	}
	for _, want := range []string{
		"quorum: 3 of 3 masters can vote (3 answer), 2 needed: ok",
		"restart protection: off",
		`key "absent": on 0 of 3 masters`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, s := range ss {
		if got := column(t, r.stdout, s.Addr(), "REPLICATION"); got != "0 replicas" {
			t.Errorf("REPLICATION of %s = %q, want \"0 replicas\"", s.Addr(), got)
		}
		if got := column(t, r.stdout, s.Addr(), "EVICTION"); got != "noeviction, no limit" {
			t.Errorf("EVICTION of %s = %q, want \"noeviction, no limit\"", s.Addr(), got)
		}
	}

	// One of three paused: down, with nothing known, but a quorum answers.
	if err := ss[0].Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep = statusJSON(t, env, exitOK, "--timeout", "300ms")
	if m := rep.Masters[0]; m.Up || m.Error == "" || m.RTTMs != nil || m.Version != nil || m.UptimeSeconds != nil ||
		m.ClockOffsetMs != nil || m.Role != nil || m.Maxmemory != nil || m.EvictsLockKeys != nil {
		t.Errorf("paused masters[0] = %+v, want down with an error and every value null", m)
	}
	if !rep.Masters[1].Up || !rep.Masters[2].Up || rep.Up != 2 || !rep.QuorumOK {
		t.Errorf("status up %d reachable %v, want 2 true", rep.Up, rep.QuorumOK)
	}
	r = runStatus(t, env, "status", "--timeout", "300ms")
	if r.code != 0 || !strings.Contains(r.stdout, "quorum: 2 of 3 masters can vote (2 answer), 2 needed: ok") {
		t.Errorf("status: exit %d, output:\n%s\nwant 0 and 2 of 3", r.code, r.stdout)
	}
	if cells := row(t, r.stdout, ss[0].Addr()); cells[1] != "down" || slices.Contains(cells[2:len(cells)-1], "0") {
		t.Errorf("row of the paused master = %q, want down and - for every value", cells)
	}

	// Two of three paused: no quorum, exit 69.
	if err := ss[1].Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r = runStatus(t, env, "status", "--timeout", "300ms")
	wantStatusError(t, r, exitUnavailable, "1 of 3 masters can vote (1 answer); a quorum needs 2")
	if !strings.Contains(r.stdout, "NO QUORUM") {
		t.Errorf("status output lacks NO QUORUM:\n%s", r.stdout)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("status took %v, want the paused masters given up after --timeout", d)
	}

	// --servers: the same masters without a configuration.
	for _, s := range ss[:2] {
		if err := s.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	rep = statusJSON(t, nil, exitOK, "--servers", ss[0].Addr()+","+ss[1].Addr()+","+ss[2].Addr())
	if rep.Up != 3 {
		t.Errorf("status --servers: up %d, want 3", rep.Up)
	}
}

// A user whom the ACL denies INFO and TIME: status shows what it could not
// read as unknown ("-", null), never as 0, and says why.
func TestStatusACLDenied(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t, redistest.WithACLUser("watcher", "on", ">watch-pw-1", "~*", "+@all", "-info", "-time"))
	c := on(s)
	c.Username, c.Password = "watcher", "watch-pw-1"
	env := statusEnv(t, 30000, c)
	// A marker, so that the verdict needs the clocks the user cannot read.
	if _, err := s.Do(t.Context(), "SET", redlock.MarkerKey, "1000"); err != nil {
		t.Fatal(err)
	}

	rep := statusJSON(t, env, exitOK)
	m := rep.Masters[0]
	if !m.Up || m.RTTMs == nil {
		t.Fatalf("masters[0] = %+v, want up with a round trip", m)
	}
	for name, v := range map[string]any{
		"version": m.Version, "runId": m.RunID, "uptimeSeconds": m.UptimeSeconds, "clockOffsetMs": m.ClockOffsetMs,
		"role": m.Role, "replicationId": m.ReplicationID, "connectedReplicas": m.ConnectedReplicas,
		"replicationLagBytes": m.ReplicationLagBytes, "masterLinkStatus": m.MasterLinkStatus,
		"maxmemory": m.Maxmemory, "maxmemoryPolicy": m.MaxmemoryPolicy, "evictsLockKeys": m.EvictsLockKeys,
		"restart.remainingMs": m.Restart.RemainingMs,
	} {
		b, _ := json.Marshal(v)
		if string(b) != "null" {
			t.Errorf("masters[0].%s = %s, want null (not readable)", name, b)
		}
	}
	if m.Replicas != nil {
		t.Errorf("masters[0].replicas = %v, want null", m.Replicas)
	}
	for _, want := range []string{"INFO: NOPERM", "TIME: NOPERM"} {
		if !strings.Contains(m.Error, want) {
			t.Errorf("masters[0].error = %q, want it to contain %q", m.Error, want)
		}
	}
	// The marker can be read, but not the clocks the verdict needs.
	if m.Restart.State != restartUnknown {
		t.Errorf("masters[0].restart = %+v, want unknown", m.Restart)
	}

	// The raw JSON: the fields are there, as null.
	r := runStatus(t, env, "status", "--json")
	for _, f := range []string{`"uptimeSeconds": null`, `"clockOffsetMs": null`, `"version": null`, `"role": null`} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("status --json lacks %s:\n%s", f, r.stdout)
		}
	}

	r = runStatus(t, env, "status")
	if r.code != 0 {
		t.Errorf("status: exit %d, want 0; stderr: %s", r.code, r.stderr)
	}
	for _, col := range []string{"CLOCK OFFSET", "VERSION", "ROLE", "UPTIME", "REPLICATION", "EVICTION"} {
		if got := column(t, r.stdout, s.Addr(), col); got != "-" {
			t.Errorf("%s = %q, want -", col, got)
		}
	}
	if got := column(t, r.stdout, s.Addr(), "RESTART"); got != "unknown" {
		t.Errorf("RESTART = %q, want unknown", got)
	}
	if !strings.Contains(column(t, r.stdout, s.Addr(), "ERROR"), "NOPERM") {
		t.Errorf("ERROR column lacks NOPERM:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "watch-pw-1") {
		t.Errorf("the password is in the output:\n%s%s", r.stdout, r.stderr)
	}
}

// A master with a replica: role, replicas and lag on the master, the link
// on the replica, one replication ID; then the replica promoted: a new
// replication ID, which the marker catches.
func TestStatusReplication(t *testing.T) {
	t.Parallel()
	a := redistest.StartServer(t)
	b := redistest.StartServer(t, redistest.WithReplicaOf(a))
	const delay = 60000
	// A marker as the library's next format writes it, on the master, so
	// that the replica has a copy.
	replidA := info(t, a, "master_replid")
	if _, err := a.Do(t.Context(), "SET", redlock.MarkerKey, fmt.Sprintf("%d:%s", serverNow(t, a)-10*delay, replidA)); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReplicaSynced(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := statusEnv(t, delay, on(a), on(b))

	// Neither votes: the master has been up for less than the delay, and
	// the replica is a replica. Two answer, none can vote: no quorum.
	rep := statusJSON(t, env, exitUnavailable)
	if rep.Up != 2 || rep.Voters != 0 || rep.QuorumOK {
		t.Errorf("status: up %d, voters %d, quorumReachable %v; want 2, 0, false", rep.Up, rep.Voters, rep.QuorumOK)
	}
	ma, mb := rep.Masters[0], rep.Masters[1]
	if str(ma.Role) != "master" || ma.ConnectedReplicas == nil || *ma.ConnectedReplicas != 1 || len(ma.Replicas) != 1 ||
		ma.ReplicationLagBytes == nil || *ma.ReplicationLagBytes < 0 || ma.MasterLinkStatus != nil {
		t.Errorf("master = role %s replicas %v %+v lag %v link %v, want master, 1, one, >= 0, null",
			str(ma.Role), ma.ConnectedReplicas, ma.Replicas, ma.ReplicationLagBytes, ma.MasterLinkStatus)
	} else if r := ma.Replicas[0]; r.Addr != b.Addr() || r.State != "online" || r.Offset == nil || r.LagBytes == nil {
		t.Errorf("master.replicas[0] = %+v, want %s online with an offset and a lag", r, b.Addr())
	}
	if str(mb.Role) != "slave" || str(mb.MasterLinkStatus) != "up" || mb.ConnectedReplicas != nil || mb.Replicas != nil || mb.ReplicationLagBytes != nil {
		t.Errorf("replica = role %s link %s replicas %v %v lag %v, want slave, up, null, null, null",
			str(mb.Role), str(mb.MasterLinkStatus), mb.ConnectedReplicas, mb.Replicas, mb.ReplicationLagBytes)
	}
	if str(ma.ReplicationID) != replidA || str(mb.ReplicationID) != replidA {
		t.Errorf("replication IDs %s and %s, want both the master's %s", str(ma.ReplicationID), str(mb.ReplicationID), replidA)
	}
	// The marker's ID is the master's: not caught by the ID, only by the
	// uptime of these young servers.
	for i, m := range rep.Masters {
		if str(m.Restart.MarkerReplicationID) != replidA || m.Restart.FailoverCaught == nil || !*m.Restart.FailoverCaught {
			t.Errorf("masters[%d].restart = %+v, want the marker's ID %s and failovers caught", i, m.Restart, replidA)
		}
	}

	// The table.
	r := runStatus(t, env, "status")
	if got := column(t, r.stdout, a.Addr(), "REPLICATION"); !regexp.MustCompile(`^1 replica, lag \d+B$`).MatchString(got) {
		t.Errorf("REPLICATION of the master = %q, want \"1 replica, lag NB\"", got)
	}
	if got := column(t, r.stdout, b.Addr(), "REPLICATION"); got != "link up" {
		t.Errorf("REPLICATION of the replica = %q, want \"link up\"", got)
	}
	if !strings.Contains(r.stdout, b.Addr()+" is a replica") {
		t.Errorf("status does not say that %s is a replica:\n%s", b.Addr(), r.stdout)
	}

	// The replica stopped: what the master writes now, it has not
	// acknowledged.
	if err := b.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	const value = "0123456789abcdef0123456789abcdef"
	for i := range 20 {
		if _, err := a.Do(t.Context(), "SET", "filler:"+strconv.Itoa(i), value); err != nil {
			t.Fatal(err)
		}
	}
	rep = statusJSON(t, statusEnv(t, delay, on(a)), exitUnavailable) // up for less than the delay
	if lag := rep.Masters[0].ReplicationLagBytes; lag == nil || *lag < 20*int64(len(value)) {
		t.Errorf("lag with the replica stopped = %v, want at least the %d bytes written since", lag, 20*len(value))
	}
	if err := b.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Promoted: a new replication ID; the marker, copied from the master,
	// records the old one, so the protection keeps the replica from voting
	// for a full restartDelay.
	if err := b.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep = statusJSON(t, statusEnv(t, delay, on(b)), exitUnavailable) // rejoining: cannot vote
	mb = rep.Masters[0]
	if str(mb.Role) != "master" || mb.ReplicationID == nil || *mb.ReplicationID == replidA {
		t.Errorf("promoted: role %s replication ID %s, want master and not the old %s", str(mb.Role), str(mb.ReplicationID), replidA)
	}
	if rs := mb.Restart; rs.State != restartRejoining || rs.RemainingMs == nil || *rs.RemainingMs != delay ||
		!strings.Contains(rs.Reason, "replication ID changed") {
		t.Errorf("promoted: restart = %+v, want rejoining for the full %dms (replication ID changed)", rs, delay)
	}
	r = runStatus(t, statusEnv(t, delay, on(b)), "status")
	if got := column(t, r.stdout, b.Addr(), "RESTART"); got != "rejoining 1m0s" {
		t.Errorf("RESTART of the promoted replica = %q, want \"rejoining 1m0s\"", got)
	}
}

// maxmemory with volatile-lru can evict a lock key (every lock key has a
// ttl); noeviction, or no limit, cannot.
func TestStatusEviction(t *testing.T) {
	t.Parallel()
	lru := redistest.StartServer(t, redistest.WithMaxMemory("3mb", "volatile-lru"))
	safe := redistest.StartServer(t, redistest.WithMaxMemory("3mb", "noeviction"))
	unlimited := redistest.StartServer(t, redistest.WithMaxMemory("0", "allkeys-lru"))
	env := statusEnv(t, 0, on(lru), on(safe), on(unlimited))

	rep := statusJSON(t, env, exitOK)
	for i, want := range []struct {
		policy    string
		maxmemory int64
		evicts    bool
	}{{"volatile-lru", 3 << 20, true}, {"noeviction", 3 << 20, false}, {"allkeys-lru", 0, false}} {
		m := rep.Masters[i]
		if str(m.MaxmemoryPolicy) != want.policy || m.Maxmemory == nil || *m.Maxmemory != want.maxmemory ||
			m.EvictsLockKeys == nil || *m.EvictsLockKeys != want.evicts {
			t.Errorf("masters[%d] policy %s maxmemory %v evicts %v, want %s %d %v",
				i, str(m.MaxmemoryPolicy), m.Maxmemory, m.EvictsLockKeys, want.policy, want.maxmemory, want.evicts)
		}
	}

	r := runStatus(t, env, "status")
	for _, tc := range []struct{ addr, want string }{
		{lru.Addr(), "volatile-lru, max 3MiB: EVICTS LOCKS"},
		{safe.Addr(), "noeviction, max 3MiB"},
		{unlimited.Addr(), "allkeys-lru, no limit"},
	} {
		if got := column(t, r.stdout, tc.addr, "EVICTION"); got != tc.want {
			t.Errorf("EVICTION of %s = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := strings.Count(r.stdout, "can evict lock keys"); got != 1 || !strings.Contains(r.stdout, "eviction: "+lru.Addr()+" can evict lock keys") {
		t.Errorf("status warns %d times, want once, about %s:\n%s", got, lru.Addr(), r.stdout)
	}
}

// The restart protection's marker: absent, in either format, recent, from
// another replication history, or unreadable.
func TestStatusRestartMarker(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t, redistest.WithACLUser("nomarker", "on", ">nm-pw", "~*", "+@all", "-get"))
	// The uptime must pass the shortest delay below for a master to be
	// "ready".
	for deadline := time.Now().Add(5 * time.Second); ; {
		if n, _ := strconv.Atoi(info(t, s, "uptime_in_seconds")); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("uptime_in_seconds still 0 after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	replid := info(t, s, "master_replid")
	const other = "0123456789012345678901234567890123456789"

	for _, tc := range []struct {
		name    string
		delayMs int64
		marker  func() string // "" deletes it
		state   string
		left    func(ms int64) bool // the remaining time, when rejoining
		caught  string              // failoverCaught: true, false or null
		cell    string              // the RESTART column (a prefix)
	}{
		{"absent", 1000, func() string { return "" }, restartNotStarted, nil, "null", "not started"},
		{"old format, old", 1000, func() string { return strconv.FormatInt(serverNow(t, s)-5000, 10) }, restartReady, nil, "false", "ready"},
		{"new format, old", 1000, func() string { return fmt.Sprintf("%d:%s", serverNow(t, s)-5000, replid) }, restartReady, nil, "true", "ready"},
		{"new format, recent", 60000, func() string { return fmt.Sprintf("%d:%s", serverNow(t, s), replid) },
			restartRejoining, func(ms int64) bool { return ms > 0 && ms <= 60000 }, "true", "rejoining "},
		{"another replication ID", 1000, func() string { return fmt.Sprintf("%d:%s", serverNow(t, s)-5000, other) },
			restartRejoining, func(ms int64) bool { return ms == 1000 }, "true", "rejoining 1s"},
		{"not a marker", 1000, func() string { return "yesterday" }, restartUnknown, nil, "null", "unknown"},
		{"off", 0, func() string { return "" }, restartOff, nil, "false", "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v := tc.marker(); v == "" {
				_, err := s.Do(t.Context(), "DEL", redlock.MarkerKey)
				if err != nil {
					t.Fatal(err)
				}
			} else if _, err := s.Do(t.Context(), "SET", redlock.MarkerKey, v); err != nil {
				t.Fatal(err)
			}
			env := statusEnv(t, tc.delayMs, on(s))
			code := exitOK
			if tc.state == restartRejoining { // the one master cannot vote
				code = exitUnavailable
			}
			rep := statusJSON(t, env, code)
			rs := rep.Masters[0].Restart
			caught, _ := json.Marshal(rs.FailoverCaught)
			if rs.State != tc.state || string(caught) != tc.caught {
				t.Errorf("restart = %+v (failoverCaught %s), want %s, failoverCaught %s", rs, caught, tc.state, tc.caught)
			}
			switch {
			case tc.left != nil && (rs.RemainingMs == nil || !tc.left(*rs.RemainingMs)):
				t.Errorf("restart.remainingMs = %v, not what %s wants", rs.RemainingMs, tc.name)
			case tc.left == nil && rs.RemainingMs != nil:
				t.Errorf("restart.remainingMs = %d, want null", *rs.RemainingMs)
			}
			if rep.RestartProtection != (tc.delayMs > 0) || rep.RestartDelayMs != tc.delayMs {
				t.Errorf("restartProtection %v restartDelayMs %d, want %v %d", rep.RestartProtection, rep.RestartDelayMs, tc.delayMs > 0, tc.delayMs)
			}
			r := runStatus(t, env, "status")
			if got := column(t, r.stdout, s.Addr(), "RESTART"); !strings.HasPrefix(got, tc.cell) {
				t.Errorf("RESTART = %q, want %q", got, tc.cell)
			}
		})
	}

	// A user that may not GET: the marker cannot be read.
	t.Run("unreadable", func(t *testing.T) {
		c := on(s)
		c.Username, c.Password = "nomarker", "nm-pw"
		rep := statusJSON(t, statusEnv(t, 1000, c), exitOK)
		m := rep.Masters[0]
		if m.Restart.State != restartUnknown || !strings.Contains(m.Error, "GET "+redlock.MarkerKey+": NOPERM") {
			t.Errorf("restart = %+v, error %q, want unknown and the GET's NOPERM", m.Restart, m.Error)
		}
	})
}

// The same server listed twice, under another database or another address
// of the same host, is a configuration that cannot work: exit 78.
func TestStatusSameServer(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t)
	other := redistest.StartServer(t)
	runID := info(t, s, "run_id")
	twoDBs := on(s)
	twoDBs.DB = 1
	for _, tc := range []struct {
		name  string
		conns []statusConn
		addrs []string
	}{
		{"listed twice", []statusConn{on(s), on(other), on(s)}, []string{s.Addr(), s.Addr()}},
		{"another db", []statusConn{on(s), twoDBs, on(other)}, []string{s.Addr(), s.Addr()}},
		{"another address", []statusConn{on(s), on(other), {Host: "localhost", Port: s.Port()}},
			[]string{s.Addr(), "localhost:" + strconv.Itoa(s.Port())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := statusEnv(t, 0, tc.conns...)
			rep := statusJSON(t, env, exitConfig)
			if len(rep.SameServer) != 1 || !slices.Equal(rep.SameServer[0].Masters, tc.addrs) || str(rep.SameServer[0].RunID) != runID {
				t.Fatalf("sameServer = %+v, want %q with run id %s", rep.SameServer, tc.addrs, runID)
			}
			r := runStatus(t, env, "status")
			wantStatusError(t, r, exitConfig, "same server: "+tc.addrs[0])
			if !strings.Contains(r.stderr, tc.addrs[1]) || !strings.Contains(r.stdout, "same server: ") {
				t.Errorf("status names not both %q:\nstdout:\n%s\nstderr: %s", tc.addrs, r.stdout, r.stderr)
			}
		})
	}
}

// Nothing status prints holds a password: not with a URL, not over TLS,
// not when the password is refused.
func TestStatusRedaction(t *testing.T) {
	t.Parallel()
	ca := redistest.NewCA(t, "status-ca")
	const secret = "s3cret-PaSS-word"
	s := redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertIgnored), redistest.WithDefaultUserOff(),
		redistest.WithACLUser("app", "on", ">"+secret, "~*", "+@all"))
	trust := "SSL_CERT_FILE=" + ca.CertFile // the test CA, for the tool's TLS
	url := func(pw string) string { return fmt.Sprintf("rediss://app:%s@127.0.0.1:%d/0", pw, s.Port()) }
	for _, tc := range []struct {
		name string
		conn statusConn
		up   bool
	}{
		{"url", statusConn{URL: url(secret)}, true},
		{"fields", statusConn{Host: "127.0.0.1", Port: s.Port(), TLS: true, Username: "app", Password: secret}, true},
		{"wrong password in url", statusConn{URL: url(secret + "-x")}, false},
		{"wrong password", statusConn{Host: "127.0.0.1", Port: s.Port(), TLS: true, Username: "app", Password: secret + "-y"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append(statusEnv(t, 1000, tc.conn), trust)
			code := exitOK
			if !tc.up {
				code = exitConfig // the master refuses the password
			}
			rep := statusJSON(t, env, code, "--key", "k")
			if m := rep.Masters[0]; m.Up != tc.up || m.Addr != s.Addr() {
				t.Errorf("masters[0] = %s up %v (%s), want %s up %v", m.Addr, m.Up, m.Error, s.Addr(), tc.up)
			}
			for _, args := range [][]string{{"status", "--json", "--key", "k"}, {"status", "--key", "k"}} {
				r := runStatus(t, env, args...)
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("lock %v prints the password:\n%s%s", args, r.stdout, r.stderr)
				}
				if !tc.up && !strings.Contains(r.stdout, "WRONGPASS") {
					t.Errorf("lock %v does not say the password was refused:\n%s", args, r.stdout)
				}
			}
		})
	}
}

// The in-memory backend's report has the Redis report's top-level fields.
func TestStatusInMemoryFields(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t)
	fields := func(env []string) []string {
		r := runStatus(t, env, "status", "--json", "--key", "k")
		if r.code != 0 {
			t.Fatalf("status --json: exit %d; stderr: %s", r.code, r.stderr)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("status --json: %v; output: %s", err, r.stdout)
		}
		return slices.Sorted(maps.Keys(m))
	}
	mem, red := fields(nil), fields(statusEnv(t, 0, on(s)))
	if !slices.Equal(mem, red) {
		t.Errorf("in-memory fields %q, Redis fields %q: want the same", mem, red)
	}

	rep := statusJSON(t, []string{lock.EnvVar + `={"type":"inMemory","namespace":"ns"}`}, exitOK, "--key", "k")
	if rep.Backend != config.InMemory || rep.Masters == nil || len(rep.Masters) != 0 || rep.Up != 0 || rep.Quorum != 0 || !rep.QuorumOK ||
		rep.Key != "ns:k" || rep.KeyHeldOn != nil || rep.RestartProtection || rep.SameServer == nil {
		t.Errorf("in-memory status = %+v, want inMemory, masters [], up 0, quorum 0 reachable, key ns:k held on unknown (null), protection off, sameServer []", rep)
	}
	r := runStatus(t, nil, "status")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "quorum: 0 of 0 masters can vote (0 answer), 0 needed: ok; restart protection: off") {
		t.Errorf("in-memory status: exit %d, output %q, want 0 and one line with the quorum and the restart protection", r.code, r.stdout)
	}
}

func TestStatusHelp(t *testing.T) {
	r := runStatus(t, nil, "status", "--help")
	for _, want := range []string{"78 when a master", "when two configured", "69 when not", "restartDelay"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status --help lacks %q:\n%s", want, r.stdout)
		}
	}
}

// ---------------------------------------------------------------------------
// Unit tests of the pure parts

func TestStatusParseMarker(t *testing.T) {
	for _, tc := range []struct {
		in     string
		born   int64
		replid string
		ok     bool
	}{
		{"1796427840933", 1796427840933, "", true},
		{"1796427840933:de1f2825c7e77f38312ca7be75f28a8992bc911d", 1796427840933, "de1f2825c7e77f38312ca7be75f28a8992bc911d", true},
		{"1.796427840933e+12", 1796427840933, "", true}, // a Lua number, as Redis may format it
		{"1796427840933:", 0, "", false},
		{"", 0, "", false},
		{"yesterday", 0, "", false},
		{"NaN", 0, "", false},
		{"1e300", 0, "", false},
	} {
		born, replid, err := parseMarker(tc.in)
		if (err == nil) != tc.ok || born != tc.born || replid != tc.replid {
			t.Errorf("parseMarker(%q) = %d, %q, %v, want %d, %q, ok %v", tc.in, born, replid, err, tc.born, tc.replid, tc.ok)
		}
	}
}

func TestStatusJudgeRestart(t *testing.T) {
	const delay = 10 * time.Second
	const now = int64(1_000_000_000)
	marker := func(s string) *string { return &s }
	id := "aaaa"
	for _, tc := range []struct {
		name  string
		delay time.Duration
		in    restartInputs
		state string
		left  int64 // -1: null
		why   string
	}{
		{"off", 0, restartInputs{}, restartOff, -1, ""},
		{"marker unread", delay, restartInputs{nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartUnknown, -1, "could not be read"},
		{"absent", delay, restartInputs{markerRead: true, nowMs: ptr(now), uptimeS: ptr(int64(1))}, restartNotStarted, -1, "first lock request"},
		{"ready", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 20000)), nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartReady, -1, ""},
		{"just ready", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 10000)), nowMs: ptr(now), uptimeS: ptr(int64(10))}, restartReady, -1, ""},
		{"young dataset", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 3000)), nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartRejoining, 7000, "dataset born only 3s ago"},
		{"young process", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 30000)), nowMs: ptr(now), uptimeS: ptr(int64(4))}, restartRejoining, 6000, "up for only 4s"},
		{"both young: the longer wait", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 1000)), nowMs: ptr(now), uptimeS: ptr(int64(4))}, restartRejoining, 9000, "dataset born only 1s ago"},
		{"same replid", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprintf("%d:%s", now-20000, id)), nowMs: ptr(now), uptimeS: ptr(int64(100)), replicationID: &id}, restartReady, -1, ""},
		{"another replid", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprintf("%d:%s", now-20000, "bbbb")), nowMs: ptr(now), uptimeS: ptr(int64(100)), replicationID: &id}, restartRejoining, 10000, "replication ID changed"},
		{"replid unknown", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprintf("%d:%s", now-20000, id)), nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartUnknown, -1, "replication ID could not be read"},
		{"old marker, replid unknown", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 20000)), nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartReady, -1, ""},
		{"no clock", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 20000)), uptimeS: ptr(int64(100))}, restartUnknown, -1, "TIME"},
		{"no uptime", delay, restartInputs{markerRead: true, marker: marker(fmt.Sprint(now - 20000)), nowMs: ptr(now)}, restartUnknown, -1, "uptime"},
		{"garbage", delay, restartInputs{markerRead: true, marker: marker("x"), nowMs: ptr(now), uptimeS: ptr(int64(100))}, restartUnknown, -1, `"x"`},
	} {
		got := judgeRestart(tc.delay, tc.in)
		left := int64(-1)
		if got.RemainingMs != nil {
			left = *got.RemainingMs
		}
		if got.State != tc.state || left != tc.left || !strings.Contains(got.Reason, tc.why) {
			t.Errorf("%s: judgeRestart = %s, %d ms, %q, want %s, %d ms, reason with %q", tc.name, got.State, left, got.Reason, tc.state, tc.left, tc.why)
		}
	}
}

func TestStatusSameServers(t *testing.T) {
	m := func(addr, runID string) masterStatus {
		st := masterStatus{Addr: addr}
		if runID != "" {
			st.RunID = &runID
		}
		return st
	}
	for _, tc := range []struct {
		name string
		ms   []masterStatus
		want [][]int
	}{
		{"distinct", []masterStatus{m("a:1", "x"), m("b:1", "y"), m("c:1", "")}, nil},
		{"run id", []masterStatus{m("a:1", "x"), m("b:1", "y"), m("c:1", "x")}, [][]int{{0, 2}}},
		{"address, run ids unknown", []masterStatus{m("a:1", ""), m("b:1", "y"), m("a:1", "")}, [][]int{{0, 2}}},
		{"joined through a third", []masterStatus{m("a:1", ""), m("b:1", "x"), m("a:1", "x")}, [][]int{{0, 1, 2}}},
		{"two groups", []masterStatus{m("a:1", "x"), m("b:1", "y"), m("c:1", "y"), m("d:1", "x"), m("e:1", "z")}, [][]int{{0, 3}, {1, 2}}},
		{"down masters", []masterStatus{m("a:1", ""), m("b:1", ""), m("c:1", "")}, nil},
	} {
		var got [][]int
		for _, g := range sameServers(tc.ms) {
			got = append(got, g.Indexes)
		}
		if !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: sameServers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStatusRedactor(t *testing.T) {
	for _, tc := range []struct {
		c    config.Connection
		in   string
		want string
	}{
		{config.Connection{Password: "pw-1"}, "auth pw-1 refused", "auth xxxxx refused"},
		{config.Connection{URL: "rediss://u:p%40ss@h:1"}, `dial "rediss://u:p%40ss@h:1": p@ss`, `dial "rediss://u:xxxxx@h:1": xxxxx`},
		{config.Connection{Host: "h", Port: 1}, "connection refused", "connection refused"},
	} {
		if got := redactor(tc.c)(tc.in); got != tc.want {
			t.Errorf("redactor(%+v)(%q) = %q, want %q", tc.c, tc.in, got, tc.want)
		}
	}
}

func TestStatusHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0B"}, {1023, "1023B"}, {1024, "1KiB"}, {1536, "1.5KiB"}, {3 << 20, "3MiB"}, {5 << 30, "5GiB"}} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
