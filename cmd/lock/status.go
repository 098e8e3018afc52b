package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
	"github.com/leverege/lock/internal/redisinfo"
	"github.com/leverege/lock/redlock"
)

const statusHead = `Usage: lock status [flags]

Asks every configured Redis master, in parallel, whether it answers (PING
and its round trip), its clock's offset from ours (TIME, corrected by half
the round trip), and from INFO: its version, role, run id, uptime,
replication (replication ID, replicas and how far they lag, or a replica's
link to its master), and its maxmemory and eviction policy, flagged when
the policy can evict lock keys. With lockOptions.restartDelay, which
masters the restart protection keeps from voting, and for how long. Then
whether a quorum (N/2+1) answers. With --key, on which masters KEY exists,
with its value and its remaining time to live. What a master would not
tell (an ACL that denies INFO or TIME) shows as "-", null in JSON.

Exits 0 when a quorum of masters can vote (they answer, are masters, not
replicas, and are not rejoining), 69 when not, and 78 when a master
refuses this configuration (TLS, credentials, database) and no quorum can
vote, or when two configured masters are the same server (the same run
id, or the same host:port, as with the same server listed twice or under
two databases): each must be an independent master, or one server's vote
counts twice. With the in-memory backend there are no masters: it says so
and exits 0.
`

const statusTail = `
Examples:
  lock status --servers 10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
  lock status --key nightly-report
  lock status --json | jq '.masters[] | select(.up | not) | .addr'
  lock status --json | jq '.masters[] | select(.evictsLockKeys) | .addr'
`

// statusReport is what lock status prints, as JSON or as a table. Both
// backends fill every top-level field, each with its meaning for the
// backend (see cmdStatus for the in-memory one).
type statusReport struct {
	Backend  string         `json:"backend"`
	Key      string         `json:"key"` // as stored; "" without --key
	Masters  []masterStatus `json:"masters"`
	Up       int            `json:"up"`     // masters that answer
	Voters   int            `json:"voters"` // of those, the ones whose votes count: masters, not replicas, not rejoining
	Quorum   int            `json:"quorum"` // voters needed
	QuorumOK bool           `json:"quorumReachable"`
	// KeyHeldOn counts the masters with the key; null without --key, and
	// with the in-memory backend (another process's locks cannot be seen).
	KeyHeldOn *int `json:"keyHeldOn"`
	// RestartDelayMs is lockOptions.restartDelay; 0 is off, and then
	// RestartProtection is false.
	RestartDelayMs    int64 `json:"restartDelayMs"`
	RestartProtection bool  `json:"restartProtection"`
	// SameServer lists configured masters that are one server.
	SameServer []sameServer `json:"sameServer"`
}

// masterStatus is what one master answered. A pointer field is null (a
// "-" in the table) when the master did not tell: it is down, or it
// refused the command (Error says which), or the field does not apply to
// its role. It is never 0 for "unknown".
type masterStatus struct {
	Addr string `json:"addr"` // host:port, never the URL (credentials)
	Up   bool   `json:"up"`   // answered PING in time
	// Refused: the master refused this configuration (TLS, credentials,
	// database) when the connection opened.
	Refused bool     `json:"refused"`
	Error   string   `json:"error,omitempty"` // why not, or what else failed
	RTTMs   *float64 `json:"rttMs"`           // of PING

	// INFO server
	Version       *string `json:"version"`
	RunID         *string `json:"runId"`
	UptimeSeconds *int64  `json:"uptimeSeconds"`

	// TIME: the master's clock minus ours.
	ClockOffsetMs *float64 `json:"clockOffsetMs"`

	// INFO replication
	Role              *string `json:"role"`          // "master" or "slave", as INFO says
	ReplicationID     *string `json:"replicationId"` // master_replid
	ConnectedReplicas *int64  `json:"connectedReplicas"`
	// Replicas are a master's replicas ([] for none); null for a replica.
	Replicas []replicaStatus `json:"replicas"`
	// ReplicationLagBytes is master_repl_offset minus the offset of the
	// replica furthest behind: what a failover to it would forget. Null
	// without a replica that reports an offset.
	ReplicationLagBytes *int64  `json:"replicationLagBytes"`
	MasterLinkStatus    *string `json:"masterLinkStatus"` // a replica's: "up" or "down"

	// INFO memory
	Maxmemory       *int64  `json:"maxmemory"` // bytes; 0 is no limit
	MaxmemoryPolicy *string `json:"maxmemoryPolicy"`
	EvictsLockKeys  *bool   `json:"evictsLockKeys"` // redisinfo.Evicts

	Restart restartStatus `json:"restart"`
	Key     *keyStatus    `json:"key,omitempty"` // with --key
}

// replicaStatus is one of a master's replicas, as the master lists it.
type replicaStatus struct {
	Addr     string `json:"addr"`
	State    string `json:"state"`
	Offset   *int64 `json:"offset"`   // acknowledged; null before the first sync
	LagBytes *int64 `json:"lagBytes"` // master_repl_offset - offset
}

// keyStatus is the key on one master; every field is null when the master
// could not be asked.
type keyStatus struct {
	Exists *bool   `json:"exists"`
	Type   *string `json:"type"`   // "string" for a lock
	Value  *string `json:"value"`  // a string key's value
	PTTLMs *int64  `json:"pttlMs"` // -1: no expiry
}

// sameServer is configured masters that are one server.
type sameServer struct {
	Masters []string `json:"masters"` // their addresses, as configured
	Indexes []int    `json:"indexes"` // their places in the configuration, from 0
	RunID   *string  `json:"runId"`   // null when found by address alone
}

func cmdStatus(args []string, stdout io.Writer) error {
	fset := newFlagSet("status")
	var bf backendFlags
	bf.register(fset)
	key := fset.String("key", "", "also show `KEY` (namespaced like run's) on every master")
	asJSON := fset.Bool("json", false, "print JSON instead of a table")
	timeout := fset.Duration("timeout", time.Second, "give each master this long to answer everything")
	if err := parse(fset, args, stdout, statusHead, statusTail); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageErr("status: unexpected argument %q (use --key KEY)", fset.Arg(0))
	}
	if *timeout <= 0 {
		return usageErr("status: --timeout %v must be positive", *timeout)
	}
	be, err := bf.load()
	if err != nil {
		return err
	}
	rep := statusReport{Backend: be.cfg.Type, Masters: []masterStatus{}, SameServer: []sameServer{}}
	if *key != "" {
		rep.Key = be.key(*key)
		rep.KeyHeldOn = ptr(0)
	}
	if be.cfg.Type != config.Redis {
		// The in-memory lock needs no master: none is up, none is needed,
		// so the quorum (of 0) is reached. It has no restart protection:
		// its locks end with the process that holds them. Another
		// process's locks cannot be seen from here: where a key is held
		// is unknown (keyHeldOn null).
		rep.QuorumOK = true
		rep.KeyHeldOn = nil
		if *asJSON {
			return writeJSON(stdout, rep)
		}
		printInMemory(stdout, be, rep)
		return nil
	}

	delay := be.cfg.LockOptions.RestartDelay
	rep.RestartDelayMs, rep.RestartProtection = delay.Milliseconds(), delay > 0
	conns := be.cfg.Connections
	rep.Masters = make([]masterStatus, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { rep.Masters[i] = probe(c, *timeout, rep.Key, delay) })
	}
	wg.Wait()
	n := len(conns)
	rep.Quorum = n/2 + 1
	for _, m := range rep.Masters {
		if m.Up {
			rep.Up++
		}
		if votes(m) {
			rep.Voters++
		}
		if m.Key != nil && m.Key.Exists != nil && *m.Key.Exists {
			*rep.KeyHeldOn++
		}
	}
	rep.QuorumOK = rep.Voters >= rep.Quorum
	rep.SameServer = sameServers(rep.Masters)
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printStatus(stdout, rep)
	}
	if len(rep.SameServer) > 0 {
		// A configuration that cannot work, whatever answers: it comes
		// before the quorum, which it makes meaningless.
		return exitErr(exitConfig, "status: %s; list each master once", describeSame(rep.SameServer))
	}
	if !rep.QuorumOK {
		for _, m := range rep.Masters {
			if m.Refused {
				return exitErr(exitConfig, "status: %d of %d masters can vote; a quorum needs %d; %s refuses this configuration: %s",
					rep.Voters, n, rep.Quorum, m.Addr, m.Error)
			}
		}
		return exitErr(exitUnavailable, "status: %d of %d masters can vote (%d answer); a quorum needs %d", rep.Voters, n, rep.Up, rep.Quorum)
	}
	return nil
}

// votes reports whether m's votes count: it answers, and is a master (as
// far as INFO says: a master that hid its role counts) that the restart
// protection does not keep out.
func votes(m masterStatus) bool {
	return m.Up && (m.Role == nil || *m.Role == "master") && m.Restart.State != restartRejoining
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// probe asks one master everything, within timeout in all. Every error
// it keeps has c's passwords taken out (errors come from the network and
// from redigo, which can quote what they were given), and is one line, so
// that it keeps to its cell of the table.
func probe(c config.Connection, timeout time.Duration, key string, restartDelay time.Duration) masterStatus {
	st := ask(c, timeout, key, restartDelay)
	st.Error = oneLine(redactor(c)(st.Error))
	return st
}

// ask is probe without the redaction.
func ask(c config.Connection, timeout time.Duration, key string, restartDelay time.Duration) masterStatus {
	st := masterStatus{Addr: c.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if key != "" {
		st.Key = &keyStatus{}
	}
	conn, err := dialMaster(ctx, c, timeout)
	if err != nil {
		st.Error = err.Error()
		// The master answered and refused this configuration: its TLS, or
		// its credentials or database (a reply to AUTH or SELECT).
		var reply redis.Error
		st.Refused = errors.Is(err, lock.ErrTLS) || errors.As(err, &reply)
		st.Restart = judgeRestart(restartDelay, restartInputs{})
		if restartDelay > 0 {
			st.Restart.Reason = "the master is down"
		}
		return st
	}
	defer conn.Close()
	do := func(cmd string, args ...any) (any, error) { return redis.DoContext(conn, ctx, cmd, args...) }

	began := time.Now()
	if _, err := do("PING"); err != nil {
		st.Error = "PING: " + err.Error()
		st.Restart = judgeRestart(restartDelay, restartInputs{})
		if restartDelay > 0 {
			st.Restart.Reason = "the master does not answer"
		}
		return st
	}
	st.Up, st.RTTMs = true, ptr(ms(time.Since(began)))

	var problems []string
	var in restartInputs
	// One INFO of the default sections (server, replication and memory
	// among them), which every Redis version takes; several sections by
	// name need Redis 7.
	if text, err := redis.String(do("INFO")); err == nil {
		info := redisinfo.Parse(text)
		st.fromInfo(info)
		in.uptimeS, in.replicationID = st.UptimeSeconds, st.ReplicationID
	} else {
		problems = append(problems, "INFO: "+err.Error())
	}
	sent := time.Now()
	if t, err := redis.Int64s(do("TIME")); err == nil && len(t) == 2 {
		got := time.Now()
		mid := sent.Add(got.Sub(sent) / 2)
		server := time.Unix(t[0], t[1]*1000)
		st.ClockOffsetMs = ptr(ms(server.Sub(mid)))
		in.nowMs = ptr(t[0]*1000 + t[1]/1000) // as the acquire script reads it
	} else if err != nil {
		problems = append(problems, "TIME: "+err.Error())
	} else {
		problems = append(problems, fmt.Sprintf("TIME: %d values, want 2", len(t)))
	}
	if restartDelay > 0 {
		v, err := redis.String(do("GET", redlock.MarkerKey))
		switch {
		case err == nil:
			in.marker, in.markerRead = &v, true
		case errors.Is(err, redis.ErrNil):
			in.markerRead = true
		default:
			problems = append(problems, "GET "+redlock.MarkerKey+": "+err.Error())
		}
	}
	st.Restart = judgeRestart(restartDelay, in)
	if key != "" {
		ks, err := keyOn(do, key)
		if err != nil {
			problems = append(problems, "key: "+err.Error())
		} else {
			st.Key = ks
		}
	}
	st.Error = strings.Join(problems, "; ")
	return st
}

// fromInfo fills what INFO tells, leaving what it lacks null.
func (st *masterStatus) fromInfo(info redisinfo.Info) {
	str := func(name string) *string {
		if v, ok := info.Get(name); ok {
			return &v
		}
		return nil
	}
	num := func(name string) *int64 {
		if v, ok := info.Int(name); ok {
			return &v
		}
		return nil
	}
	st.Version, st.RunID, st.UptimeSeconds = str("redis_version"), str("run_id"), num("uptime_in_seconds")
	st.Role, st.ReplicationID = str("role"), str("master_replid")
	if st.Role != nil && *st.Role == "master" {
		st.ConnectedReplicas = num("connected_slaves")
		top, topOK := info.Int("master_repl_offset")
		st.Replicas = []replicaStatus{}
		for _, r := range info.Replicas() {
			rs := replicaStatus{Addr: r.Addr, State: r.State}
			if r.Offset >= 0 {
				rs.Offset = &r.Offset
				if topOK {
					rs.LagBytes = ptr(top - r.Offset)
				}
			}
			st.Replicas = append(st.Replicas, rs)
		}
		if lag, ok := info.MaxReplicaLag(); ok {
			st.ReplicationLagBytes = &lag
		}
	} else {
		st.MasterLinkStatus = str("master_link_status")
	}
	st.Maxmemory, st.MaxmemoryPolicy = num("maxmemory"), str("maxmemory_policy")
	if st.Maxmemory != nil && st.MaxmemoryPolicy != nil {
		st.EvictsLockKeys = ptr(redisinfo.Evicts(*st.MaxmemoryPolicy, *st.Maxmemory))
	}
}

// redactor returns a function that takes c's password out of a message,
// in every spelling a message could quote it: as given, and, from a URL,
// as written there and decoded. Nothing status prints should hold one
// (addresses are Addr(), host:port), but an error's text is not ours to
// vouch for.
func redactor(c config.Connection) func(string) string {
	secrets := []string{c.Password}
	if _, rest, ok := strings.Cut(c.URL, "://"); ok {
		authority, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			_, raw, _ := strings.Cut(authority[:i], ":")
			secrets = append(secrets, raw)
			if p, err := url.PathUnescape(raw); err == nil {
				secrets = append(secrets, p, url.QueryEscape(p))
			}
		}
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
	// The longest first: one spelling may hold another.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return func(s string) string {
		for _, p := range secrets {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
		return s
	}
}

func keyOn(do func(string, ...any) (any, error), key string) (*keyStatus, error) {
	typ, err := redis.String(do("TYPE", key))
	if err != nil {
		return nil, err
	}
	absent := &keyStatus{Exists: ptr(false)}
	if typ == "none" {
		return absent, nil
	}
	ks := &keyStatus{Exists: ptr(true), Type: &typ}
	if typ == "string" {
		v, err := redis.String(do("GET", key))
		switch {
		case errors.Is(err, redis.ErrNil): // expired after TYPE
			return absent, nil
		case err != nil:
			return nil, err
		}
		ks.Value = &v
	}
	pttl, err := redis.Int64(do("PTTL", key))
	if err != nil {
		return nil, err
	}
	if pttl == -2 { // expired between the commands
		return absent, nil
	}
	ks.PTTLMs = &pttl
	return ks, nil
}

// dialMaster connects to c as the library does (credentials, database,
// TLS), bounded by ctx and by timeout for connecting, reading and writing.
func dialMaster(ctx context.Context, c config.Connection, timeout time.Duration) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Dial(ctx, timeout)
}

// sameServers finds configured masters that are one server: the same run
// id (INFO's, new at every start of a server process), or the same
// host:port (the same server, whatever the database). Redlock counts each
// master's vote once: one server listed twice gives one vote twice, so its
// failure can take the quorum with it.
func sameServers(ms []masterStatus) []sameServer {
	same := func(a, b masterStatus) bool {
		return a.Addr == b.Addr || (a.RunID != nil && b.RunID != nil && *a.RunID == *b.RunID)
	}
	// Union-find over the pairs: a run id known on only some connections
	// still joins them through the others. Every root is the smallest index
	// of its group, so that groups come out in configuration order.
	root := make([]int, len(ms))
	for i := range root {
		root[i] = i
	}
	find := func(i int) int {
		for root[i] != i { // roots only point to smaller indexes: this ends
			i = root[i]
		}
		return i
	}
	for i := range ms {
		for j := range i {
			if same(ms[i], ms[j]) {
				a, b := find(i), find(j)
				root[max(a, b)] = min(a, b)
			}
		}
	}
	out := []sameServer{}
	for first := range ms {
		if find(first) != first {
			continue
		}
		s := sameServer{}
		for i := range ms {
			if find(i) != first {
				continue
			}
			s.Masters, s.Indexes = append(s.Masters, ms[i].Addr), append(s.Indexes, i)
			if s.RunID == nil {
				s.RunID = ms[i].RunID
			}
		}
		if len(s.Indexes) > 1 {
			out = append(out, s)
		}
	}
	return out
}

// describeSame says which masters are one server, for the table and the
// error line.
func describeSame(groups []sameServer) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		names := make([]string, len(g.Masters))
		for j, a := range g.Masters {
			names[j] = fmt.Sprintf("%s (masters[%d])", a, g.Indexes[j])
		}
		how := "the same host:port"
		if g.RunID != nil {
			how = "run id " + *g.RunID
		}
		parts[i] = fmt.Sprintf("same server: %s are one server (%s)", joinAnd(names), how)
	}
	return strings.Join(parts, "; ")
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---------------------------------------------------------------------------
// The table

// printInMemory prints the in-memory backend's status on one line, with
// the summary's words for its quorum and restart protection.
func printInMemory(w io.Writer, be *backend, rep statusReport) {
	line := be.describe() + ": no masters, locks exclude only within one process " +
		"(configure Redis with --servers, --config or LOCK_CONFIG); " +
		"quorum: 0 of 0 masters can vote (0 answer), 0 needed: ok; restart protection: off"
	if rep.Key != "" {
		line += fmt.Sprintf("; key %q: on 0 of 0 masters: another process's in-memory locks cannot be seen", rep.Key)
	}
	fmt.Fprintln(w, line)
}

func printStatus(w io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tSTATE\tRTT\tCLOCK OFFSET\tVERSION\tROLE\tUPTIME\tREPLICATION\tEVICTION\tRESTART\tERROR")
	for _, m := range rep.Masters {
		state := "down"
		if m.Up {
			state = "up"
		}
		uptime := "-"
		if m.UptimeSeconds != nil {
			uptime = (time.Duration(*m.UptimeSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Addr, state,
			fmtMs(m.RTTMs, "%.2fms"), fmtMs(m.ClockOffsetMs, "%+.2fms"), dash(m.Version), dash(m.Role), uptime,
			replicationCell(m), evictionCell(m), restartCell(m), dash(&m.Error))
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tRUN ID\tREPLICATION ID")
	for _, m := range rep.Masters {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Addr, dash(m.RunID), dash(m.ReplicationID))
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	verdict := "ok"
	if !rep.QuorumOK {
		verdict = "NO QUORUM: locks cannot be taken"
	}
	fmt.Fprintf(w, "quorum: %d of %d masters can vote (%d answer), %d needed: %s\n", rep.Voters, len(rep.Masters), rep.Up, rep.Quorum, verdict)
	printRestartSummary(w, rep)
	for _, m := range rep.Masters {
		if m.EvictsLockKeys != nil && *m.EvictsLockKeys {
			fmt.Fprintf(w, "eviction: %s can evict lock keys (maxmemory-policy %s, maxmemory %s): a held lock can vanish there when memory runs out; use noeviction\n",
				m.Addr, *m.MaxmemoryPolicy, humanBytes(*m.Maxmemory))
		}
		if m.Role != nil && *m.Role != "master" {
			fmt.Fprintf(w, "role: %s is a replica (role %s): it refuses the lock's writes, so it never votes; configure its master\n", m.Addr, *m.Role)
		}
	}
	if len(rep.SameServer) > 0 {
		fmt.Fprintf(w, "%s: each master must be an independent server\n", describeSame(rep.SameServer))
	}
	if rep.Key == "" {
		return
	}
	fmt.Fprintf(w, "\nkey %q: on %d of %d masters\n", rep.Key, *rep.KeyHeldOn, len(rep.Masters))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tKEY\tPTTL\tVALUE")
	for _, m := range rep.Masters {
		switch k := m.Key; {
		case k == nil || k.Exists == nil:
			fmt.Fprintf(tw, "%s\tunknown\t-\t-\n", m.Addr)
		case !*k.Exists:
			fmt.Fprintf(tw, "%s\tabsent\t-\t-\n", m.Addr)
		default:
			ttl := "-"
			switch {
			case k.PTTLMs == nil:
			case *k.PTTLMs < 0:
				ttl = "no expiry"
			default:
				ttl = (time.Duration(*k.PTTLMs) * time.Millisecond).String()
			}
			v := dash(k.Value)
			if *k.Type != "string" {
				v = "(a " + *k.Type + ", not a lock)"
			}
			fmt.Fprintf(tw, "%s\tpresent\t%s\t%s\n", m.Addr, ttl, v)
		}
	}
	_ = tw.Flush()
}

// printRestartSummary says once whether the restart protection is on and
// what it catches: it is one setting for every master.
func printRestartSummary(w io.Writer, rep statusReport) {
	if !rep.RestartProtection {
		fmt.Fprintln(w, "restart protection: off (lockOptions.restartDelay 0): a master that restarts without its data, is flushed, or is replaced by a promoted replica votes at once, and can grant a lock still held elsewhere")
		return
	}
	delay := time.Duration(rep.RestartDelayMs) * time.Millisecond
	var rejoining, notStarted, unknown, oldMarker int
	for _, m := range rep.Masters {
		switch m.Restart.State {
		case restartRejoining:
			rejoining++
		case restartNotStarted:
			notStarted++
		case restartUnknown:
			unknown++
		}
		if m.Restart.FailoverCaught != nil && !*m.Restart.FailoverCaught {
			oldMarker++
		}
	}
	fmt.Fprintf(w, "restart protection: on, restartDelay %v: a master that restarted, lost its data or was promoted less than that ago does not vote", delay)
	fmt.Fprintf(w, " (rejoining: %d, not started: %d, unknown: %d of %d)\n", rejoining, notStarted, unknown, len(rep.Masters))
	if oldMarker > 0 {
		fmt.Fprintf(w, "restart protection: %d master(s) have a marker without a replication ID: a replica promoted there would vote at once (restarts and flushes are still caught)\n", oldMarker)
	}
}

func replicationCell(m masterStatus) string {
	switch {
	case m.Role == nil:
		return "-"
	case *m.Role == "master":
		if m.ConnectedReplicas == nil {
			return "-"
		}
		s := plural(*m.ConnectedReplicas, "replica", "replicas")
		if m.ReplicationLagBytes != nil {
			s += ", lag " + humanBytes(*m.ReplicationLagBytes)
		}
		return s
	case m.MasterLinkStatus != nil:
		return "link " + *m.MasterLinkStatus
	}
	return "-"
}

func evictionCell(m masterStatus) string {
	if m.MaxmemoryPolicy == nil || m.Maxmemory == nil {
		return "-"
	}
	limit := "no limit"
	if *m.Maxmemory > 0 {
		limit = "max " + humanBytes(*m.Maxmemory)
	}
	s := *m.MaxmemoryPolicy + ", " + limit
	if m.EvictsLockKeys != nil && *m.EvictsLockKeys {
		s += ": EVICTS LOCKS"
	}
	return s
}

func restartCell(m masterStatus) string {
	r := m.Restart
	switch {
	case r.State == "" || !m.Up && r.State == restartUnknown: // as every other cell of a master down
		return "-"
	case r.State == restartRejoining && r.RemainingMs != nil:
		return "rejoining " + (time.Duration(*r.RemainingMs) * time.Millisecond).String()
	}
	return r.State
}

func fmtMs(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func dash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

// humanBytes writes n in B, KiB, MiB or GiB, as exact as one decimal lets.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	f, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f, suffix = f/unit, s
		if f < unit && f > -unit {
			break
		}
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0") + suffix
}
