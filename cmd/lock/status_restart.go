package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/leverege/lock/redlock"
)

// The restart protection (lockOptions.restartDelay, redlock's
// WithRestartDelay) as lock status sees it: the acquire script refuses a
// master's vote for a while after the master restarted or lost its data,
// and status tells, from the same inputs, which masters would refuse now
// and for how long. The inputs are the master's own clocks (TIME, INFO
// uptime_in_seconds, both as the script reads them) and the marker key
// (redlock.MarkerKey).

// The states of the restart protection on one master.
const (
	restartOff        = "off"         // restartDelay is 0: every master votes at once
	restartReady      = "ready"       // the delay has passed: the master votes
	restartRejoining  = "rejoining"   // the master refuses to vote for RemainingMs more
	restartNotStarted = "not started" // no marker: the first lock request starts the delay
	restartUnknown    = "unknown"     // what it takes to judge could not be read
)

// restartStatus is the restart protection's verdict on one master.
type restartStatus struct {
	State string `json:"state"` // one of the restart* states
	// RemainingMs is how long a rejoining master still refuses to vote;
	// null in every other state (never 0: a master that votes is "ready").
	RemainingMs *int64 `json:"remainingMs"`
	// BornMs is the marker's time, the master's clock in ms at which a lock
	// request first found the dataset without the marker.
	BornMs *int64 `json:"bornMs"`
	// MarkerReplicationID is the master_replid the marker records, null
	// for a marker in the older format that records none.
	MarkerReplicationID *string `json:"markerReplicationId"`
	// FailoverCaught tells whether a promoted replica of this master would
	// be refused: true when the marker records a replication ID (a promoted
	// replica's is new), false when the protection is off or the marker
	// records none (the replica has the marker's copy and has been up for
	// long: it votes at once), null when there is no marker to tell.
	FailoverCaught *bool `json:"failoverCaught"`
	// Reason says why the master is rejoining, not started or unknown.
	Reason string `json:"reason,omitempty"`
}

// restartInputs are what the verdict is drawn from; nil is "could not be
// read".
type restartInputs struct {
	marker        *string // MarkerKey's value; "" with markerRead is absent
	markerRead    bool    // GET MarkerKey answered
	nowMs         *int64  // the master's TIME, in ms
	uptimeS       *int64  // INFO uptime_in_seconds
	replicationID *string // INFO master_replid
}

// errMarkerFormat: a marker neither format describes.
var errMarkerFormat = errors.New(`want "<ms>" or "<ms>:<master_replid>"`)

// parseMarker reads MarkerKey's value: "<born ms>:<master_replid>" (the
// acquire script's, so that a promoted replica, which keeps the marker but
// not the replication ID, is caught) or "<born ms>" (as versions before
// v0.1.0 wrote it). The time may come as a float: a Lua number
// the script SETs is formatted by Redis.
func parseMarker(v string) (bornMs int64, replid string, err error) {
	t, replid, hasID := strings.Cut(v, ":")
	if hasID && replid == "" {
		return 0, "", errMarkerFormat
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n, replid, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, "", errMarkerFormat
	}
	return int64(math.Floor(f)), replid, nil
}

// judgeRestart is the acquire script's decision, taken from outside: a
// master votes once both the time since it was born (the marker) and its
// uptime are at least delay; until then it refuses for max(delay - (now -
// born), delay - uptime). Where the marker records a replication ID other
// than the master's, the master was promoted or restarted with a new
// history since: the script starts the delay again at the next lock
// request, so a full delay remains. Where there is no marker, the first
// lock request writes one and is refused for the full delay: that is "not
// started", not a remaining time of 0 or of delay counted from now.
func judgeRestart(delay time.Duration, in restartInputs) restartStatus {
	if delay <= 0 {
		return restartStatus{State: restartOff, FailoverCaught: ptr(false)}
	}
	full := delay.Milliseconds()
	unknown := func(format string, args ...any) restartStatus {
		return restartStatus{State: restartUnknown, Reason: fmt.Sprintf(format, args...)}
	}
	if !in.markerRead {
		return unknown("the marker %s could not be read", redlock.MarkerKey)
	}
	if in.marker == nil {
		return restartStatus{State: restartNotStarted,
			Reason: fmt.Sprintf("no marker: the first lock request writes it, and the master votes %v after that", delay)}
	}
	born, replid, err := parseMarker(*in.marker)
	if err != nil {
		return unknown("the marker %q: %v", *in.marker, err)
	}
	st := restartStatus{BornMs: &born, FailoverCaught: ptr(replid != "")}
	if replid != "" {
		st.MarkerReplicationID = &replid
		switch {
		case in.replicationID == nil:
			return unknown("the master's replication ID could not be read (INFO)")
		case *in.replicationID != replid:
			st.State, st.RemainingMs = restartRejoining, &full
			st.Reason = fmt.Sprintf("replication ID changed since the marker was written (promoted, or restarted with a new history): the next lock request starts %v again", delay)
			return st
		}
	}
	switch {
	case in.nowMs == nil:
		return unknown("the master's clock could not be read (TIME)")
	case in.uptimeS == nil:
		return unknown("the master's uptime could not be read (INFO)")
	}
	byAge := full - (*in.nowMs - born)
	byUptime := full - *in.uptimeS*1000
	if byAge <= 0 && byUptime <= 0 {
		st.State = restartReady
		return st
	}
	left := max(byAge, byUptime)
	st.State, st.RemainingMs = restartRejoining, &left
	if byUptime >= byAge {
		st.Reason = fmt.Sprintf("up for only %v", time.Duration(*in.uptimeS)*time.Second)
	} else {
		st.Reason = fmt.Sprintf("dataset born only %v ago", (time.Duration(*in.nowMs-born) * time.Millisecond).Round(time.Millisecond))
	}
	return st
}

func ptr[T any](v T) *T { return &v }
