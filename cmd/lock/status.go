package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/config"
)

const statusHead = `Usage: lock status [flags]

Asks every configured Redis master, in parallel, whether it answers (PING
and its round trip), its version, role, run id and uptime (INFO), and its
clock's offset from ours (TIME, corrected by half the round trip); then
whether a quorum (N/2+1) answers. With --key, on which masters KEY exists,
with its value and its remaining time to live.

Exits 0 when a quorum answers and 69 when not. With the in-memory backend
there are no masters: it says so and exits 0.
`

const statusTail = `
Examples:
  lock status --servers 10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
  lock status --key nightly-report
  lock status --json | jq '.masters[] | select(.up | not) | .addr'
`

// masterStatus is what one master answered.
type masterStatus struct {
	Addr          string     `json:"addr"`
	Up            bool       `json:"up"`              // answered PING in time
	Error         string     `json:"error,omitempty"` // why not, or what else failed
	RTTMs         float64    `json:"rttMs"`           // of PING
	Version       string     `json:"version,omitempty"`
	Role          string     `json:"role,omitempty"`
	RunID         string     `json:"runId,omitempty"`
	UptimeSeconds int64      `json:"uptimeSeconds"`
	ClockOffsetMs float64    `json:"clockOffsetMs"` // the master's clock minus ours
	Key           *keyStatus `json:"key,omitempty"`
}

// keyStatus is the key on one master.
type keyStatus struct {
	Exists bool   `json:"exists"`
	Type   string `json:"type,omitempty"`  // "string" for a lock
	Value  string `json:"value,omitempty"` // a string key's value
	PTTLMs int64  `json:"pttlMs"`          // -1: no expiry
}

type statusReport struct {
	Backend   string         `json:"backend"`
	Key       string         `json:"key,omitempty"` // as stored
	Masters   []masterStatus `json:"masters"`
	Up        int            `json:"up"`
	Quorum    int            `json:"quorum"` // masters needed
	QuorumOK  bool           `json:"quorumReachable"`
	KeyHeldOn int            `json:"keyHeldOn,omitempty"` // masters with the key
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
	if be.cfg.Type != config.Redis {
		if *asJSON {
			return writeJSON(stdout, struct {
				Backend string         `json:"backend"`
				Note    string         `json:"note"`
				Masters []masterStatus `json:"masters"`
			}{be.cfg.Type, "the in-memory lock has no masters; configure Redis with --servers, --config or LOCK_CONFIG", []masterStatus{}})
		}
		fmt.Fprintln(stdout, "in-memory backend: no masters to check (configure Redis with --servers, --config or LOCK_CONFIG)")
		return nil
	}
	rep := statusReport{Backend: be.cfg.Type}
	if *key != "" {
		rep.Key = be.key(*key)
	}
	conns := be.cfg.Connections
	rep.Masters = make([]masterStatus, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { rep.Masters[i] = probe(c, *timeout, rep.Key) })
	}
	wg.Wait()
	n := len(conns)
	rep.Quorum = n/2 + 1
	for _, m := range rep.Masters {
		if m.Up {
			rep.Up++
		}
		if m.Key != nil && m.Key.Exists {
			rep.KeyHeldOn++
		}
	}
	rep.QuorumOK = rep.Up >= rep.Quorum
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printStatus(stdout, rep)
	}
	if !rep.QuorumOK {
		return exitErr(exitUnavailable, "status: %d of %d masters answer; a quorum needs %d", rep.Up, n, rep.Quorum)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// probe asks one master everything, within timeout in all.
func probe(c config.Connection, timeout time.Duration, key string) masterStatus {
	st := masterStatus{Addr: c.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := dialMaster(ctx, c, timeout)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer conn.Close()
	do := func(cmd string, args ...any) (any, error) { return redis.DoContext(conn, ctx, cmd, args...) }

	began := time.Now()
	if _, err := do("PING"); err != nil {
		st.Error = "PING: " + err.Error()
		return st
	}
	st.Up, st.RTTMs = true, ms(time.Since(began))

	var problems []string
	if info, err := redis.String(do("INFO", "server")); err == nil {
		f := infoFields(info)
		st.Version, st.RunID = f["redis_version"], f["run_id"]
		st.UptimeSeconds, _ = strconv.ParseInt(f["uptime_in_seconds"], 10, 64)
	} else {
		problems = append(problems, "INFO server: "+err.Error())
	}
	if info, err := redis.String(do("INFO", "replication")); err == nil {
		st.Role = infoFields(info)["role"]
	} else {
		problems = append(problems, "INFO replication: "+err.Error())
	}
	sent := time.Now()
	if t, err := redis.Int64s(do("TIME")); err == nil && len(t) == 2 {
		got := time.Now()
		mid := sent.Add(got.Sub(sent) / 2)
		server := time.Unix(t[0], t[1]*1000)
		st.ClockOffsetMs = ms(server.Sub(mid))
	} else if err != nil {
		problems = append(problems, "TIME: "+err.Error())
	}
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

func keyOn(do func(string, ...any) (any, error), key string) (*keyStatus, error) {
	typ, err := redis.String(do("TYPE", key))
	if err != nil {
		return nil, err
	}
	if typ == "none" {
		return &keyStatus{}, nil
	}
	ks := &keyStatus{Exists: true, Type: typ}
	if typ == "string" {
		v, err := redis.String(do("GET", key))
		if err != nil && err != redis.ErrNil {
			return nil, err
		}
		ks.Value = v
	}
	if ks.PTTLMs, err = redis.Int64(do("PTTL", key)); err != nil {
		return nil, err
	}
	if ks.PTTLMs == -2 { // expired between the two commands
		return &keyStatus{}, nil
	}
	return ks, nil
}

// dialMaster connects to c as the library does (credentials, database,
// TLS), bounded by ctx and by timeout for connecting, reading and writing.
func dialMaster(ctx context.Context, c config.Connection, timeout time.Duration) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Dial(ctx, timeout)
}

// infoFields parses INFO's "name:value" lines.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printStatus(w io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tSTATE\tRTT\tCLOCK OFFSET\tVERSION\tROLE\tUPTIME\tRUN ID / ERROR")
	for _, m := range rep.Masters {
		if !m.Up {
			fmt.Fprintf(tw, "%s\tdown\t-\t-\t-\t-\t-\t%s\n", m.Addr, m.Error)
			continue
		}
		last := m.RunID
		if m.Error != "" {
			last = strings.TrimSpace(last + " " + m.Error)
		}
		fmt.Fprintf(tw, "%s\tup\t%.2fms\t%+.2fms\t%s\t%s\t%v\t%s\n", m.Addr, m.RTTMs, m.ClockOffsetMs,
			dash(m.Version), dash(m.Role), time.Duration(m.UptimeSeconds)*time.Second, last)
	}
	_ = tw.Flush()
	verdict := "ok"
	if !rep.QuorumOK {
		verdict = "NO QUORUM: locks cannot be taken"
	}
	fmt.Fprintf(w, "quorum: %d of %d masters answer, %d needed: %s\n", rep.Up, len(rep.Masters), rep.Quorum, verdict)
	if rep.Key == "" {
		return
	}
	fmt.Fprintf(w, "\nkey %q: on %d of %d masters\n", rep.Key, rep.KeyHeldOn, len(rep.Masters))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tKEY\tPTTL\tVALUE")
	for _, m := range rep.Masters {
		switch k := m.Key; {
		case !m.Up || k == nil:
			fmt.Fprintf(tw, "%s\tunknown\t-\t-\n", m.Addr)
		case !k.Exists:
			fmt.Fprintf(tw, "%s\tabsent\t-\t-\n", m.Addr)
		default:
			ttl := "no expiry"
			if k.PTTLMs >= 0 {
				ttl = (time.Duration(k.PTTLMs) * time.Millisecond).String()
			}
			v := k.Value
			if k.Type != "string" {
				v = "(a " + k.Type + ", not a lock)"
			}
			fmt.Fprintf(tw, "%s\tpresent\t%s\t%s\n", m.Addr, ttl, v)
		}
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
