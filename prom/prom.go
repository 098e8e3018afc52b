// Package prom exports what a lock.Locker does as Prometheus metrics. It is
// a module of its own, so that the lock library does not depend on
// Prometheus.
//
//	c := prom.New()
//	prometheus.MustRegister(c)
//	locker, err := lock.Create(lock.Options{LockConfig: cfg, Observer: c})
//
// Metrics (all prefixed lock_):
//
//	lock_acquisitions_total{result}            Lock calls that reached the masters: acquired, not_acquired, destroyed, error
//	lock_attempts_total{result}                attempts within them: acquired, failed
//	lock_wait_seconds                          histogram: from calling Lock to its result
//	lock_hold_seconds                          histogram: from acquiring to Unlock
//	lock_extends_total{result}                 Extend calls: ok, not_held, no_quorum, destroyed, invalid, error
//	lock_unlocks_total{result}                 Unlock calls: ok, not_held, no_quorum, destroyed, error
//	lock_master_request_duration_seconds{master,op}  histogram: one master's answer to one request
//	lock_master_answers_total{master,op,answer}      yes, taken, not_held, unreachable, rejoining, auth, tls,
//	                                                 read_only, not_replicated, evictable, error
//	lock_master_rejoining_answers_total{master}      answers "rejoining": the master restarted or lost its data
//	                                                 less than the restart delay ago (each request counts)
//	lock_master_trouble_total{master,trouble}        what a master told when a connection opened: same_server, evictable,
//	                                                 replica, other (INFO refused)
//
// Keys are not labels (there may be many); masters are, by address.
package prom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	lock "github.com/leverege/lock"
)

// Collector is a lock.Observer and a prometheus.Collector.
type Collector struct {
	acquisitions *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	wait         prometheus.Histogram
	hold         prometheus.Histogram
	extends      *prometheus.CounterVec
	unlocks      *prometheus.CounterVec
	requests     *prometheus.HistogramVec
	answers      *prometheus.CounterVec
	restarts     *prometheus.CounterVec
	trouble      *prometheus.CounterVec
}

// New returns a Collector; register it, and pass it as the Locker's
// Observer.
func New() *Collector {
	secs := prometheus.ExponentialBuckets(0.0001, 4, 10) // 100µs to about 26s
	return &Collector{
		acquisitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_acquisitions_total",
			Help: "Lock calls, by result."}, []string{"result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_attempts_total",
			Help: "Attempts made by Lock calls, by result."}, []string{"result"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lock_wait_seconds",
			Help: "Time from calling Lock to its result.", Buckets: secs}),
		hold: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lock_hold_seconds",
			Help: "Time from acquiring a lock to unlocking it.", Buckets: secs}),
		extends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_extends_total",
			Help: "Extend calls, by result."}, []string{"result"}),
		unlocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_unlocks_total",
			Help: "Unlock calls, by result."}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lock_master_request_duration_seconds",
			Help: "Time for one master to answer one request.", Buckets: secs}, []string{"master", "op"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_master_answers_total",
			Help: "Masters' answers to requests, by answer."}, []string{"master", "op", "answer"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_master_rejoining_answers_total",
			Help: "Answers from a master that restarted or lost its data less than the restart delay ago, by request."}, []string{"master"}),
		trouble: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lock_master_trouble_total",
			Help: "Trouble a master told of when a connection to it opened, by kind."}, []string{"master", "trouble"}),
	}
}

func (c *Collector) all() []prometheus.Collector {
	return []prometheus.Collector{c.acquisitions, c.attempts, c.wait, c.hold, c.extends, c.unlocks, c.requests, c.answers, c.restarts, c.trouble}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.all() {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.all() {
		m.Collect(ch)
	}
}

// Observe implements lock.Observer.
func (c *Collector) Observe(e lock.Event) {
	switch e.Kind {
	case lock.KindLock:
		c.acquisitions.WithLabelValues(result(e.Err, "acquired")).Inc()
		c.wait.Observe(e.Took.Seconds())
	case lock.KindAttempt:
		r := "acquired"
		if e.Err != nil {
			r = "failed"
		}
		c.attempts.WithLabelValues(r).Inc()
	case lock.KindExtend:
		c.extends.WithLabelValues(result(e.Err, "ok")).Inc()
	case lock.KindUnlock:
		c.unlocks.WithLabelValues(result(e.Err, "ok")).Inc()
		if e.Err == nil {
			c.hold.Observe(e.Held.Seconds())
		}
	case lock.KindNode:
		c.requests.WithLabelValues(e.Addr, e.Op).Observe(e.Took.Seconds())
		a := answer(e.Err)
		c.answers.WithLabelValues(e.Addr, e.Op, a).Inc()
		if a == "rejoining" {
			c.restarts.WithLabelValues(e.Addr).Inc()
		}
	case lock.KindMaster:
		t := "other"
		switch {
		case errors.Is(e.Err, lock.ErrSameServer):
			t = "same_server"
		case errors.Is(e.Err, lock.ErrEvictable):
			t = "evictable"
		case errors.Is(e.Err, lock.ErrReadOnly):
			t = "replica"
		}
		c.trouble.WithLabelValues(e.Addr, t).Inc()
	}
}

// result labels a call's outcome: ok when err is nil, else the first of
// results that err matches, else "error".
func result(err error, ok string) string {
	if err == nil {
		return ok
	}
	return label(err, results)
}

var results = []labelled{
	{lock.ErrDestroyed, "destroyed"},
	{lock.ErrInvalidArgument, "invalid"},
	{lock.ErrNotAcquired, "not_acquired"},
	{lock.ErrNotHeld, "not_held"},
	{lock.ErrNoQuorum, "no_quorum"},
}

// answer labels a master's answer: yes when err is nil, else the first of
// answers that err matches, else "error".
func answer(err error) string {
	if err == nil {
		return "yes"
	}
	return label(err, answers)
}

var answers = []labelled{
	{lock.ErrTaken, "taken"},
	{lock.ErrNotHeldHere, "not_held"},
	{lock.ErrRejoining, "rejoining"},
	{lock.ErrUnreachable, "unreachable"},
	{lock.ErrAuth, "auth"},
	{lock.ErrTLS, "tls"},
	{lock.ErrReadOnly, "read_only"},
	{lock.ErrNotReplicated, "not_replicated"},
	{lock.ErrEvictable, "evictable"},
}

// labelled is an error and its label.
type labelled struct {
	err   error
	label string
}

func label(err error, table []labelled) string {
	for _, l := range table {
		if errors.Is(err, l.err) {
			return l.label
		}
	}
	return "error"
}
