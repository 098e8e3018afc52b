package redlock

import (
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/internal/pipeline"
)

// Client hands out locks held on a quorum of Redis masters. It is safe for
// concurrent use.
//
// Each master has one connection, borrowed from its pool and kept, over
// which the requests of every goroutine are pipelined (package
// internal/pipeline): a release or extend follows its SET on the same
// connection and cannot overtake it.
type Client struct {
	masters  []master
	quorum   int
	opts     options
	inflight core.InFlight
	// background counts the goroutines the Client starts: the connections'
	// readers, dials and script reloads, and the watchers' sessions.
	background sync.WaitGroup
	// waiting is the line, per key, of this Client's callers waiting for a
	// lock held elsewhere; a release wakes the first (see pubsub.go).
	waiting core.Line
	wakeups wakeups
	// contacts is what each master told about itself when its connection
	// opened (contact.go).
	contacts contacts
}

// master is one independent Redis master.
type master struct {
	name string // for errors and events
	pool *redis.Pool
	conn *pipeline.Conn
}

// New returns a Client over the given masters, one pool each, which must be
// independent servers (not replicas of each other). The Client takes over the
// pools: Destroy closes them. It borrows one connection from each pool and
// keeps it, pipelining every request to that master over it; a connection
// that breaks goes back to its pool, which dials the next. The pools should
// dial with DialContext and set read and write timeouts: a dial that
// ignores its context is abandoned after the node timeout but keeps a
// goroutine and a socket until it returns (no other dial to that master
// starts meanwhile), and a connection wrapper that hides redigo's per-read
// deadline (redis.ConnWithTimeout) is read with its own read timeout only.
func New(pools []*redis.Pool, opts ...Option) (*Client, error) {
	if len(pools) == 0 {
		return nil, core.Invalid("pools", "at least one master is needed")
	}
	o, err := buildOptions(len(pools), opts)
	if err != nil {
		return nil, err
	}
	c := &Client{masters: make([]master, len(pools)), quorum: core.Quorum(len(pools)), opts: o}
	if o.broken.halfQuorum() {
		c.quorum = max(len(pools)/2, 1)
	}
	c.contacts.init(c)
	c.wakeups.announcements = make(chan announcement, 256)
	c.wakeups.quit = make(chan struct{})
	for i, p := range pools {
		if p == nil {
			return nil, core.Invalid("pools", "pool %d is nil", i)
		}
		c.masters[i] = master{name: o.names[i], pool: p, conn: pipeline.New(p, o.nodeTimeout, c.contacts.opening(i), &c.background)}
		c.wakeups.watchers = append(c.wakeups.watchers, newWatcher(c, p))
	}
	c.waiting.Linger = linger
	c.waiting.Watch = c.wakeups.watch
	c.waiting.Unwatch = c.wakeups.unwatch
	return c, nil
}

// linger keeps the subscription to a key's releases that long after the
// last caller of this process stopped waiting for it.
const linger = 2 * time.Second

// Quorum is how many masters must agree: N/2+1 of the configured N.
func (c *Client) Quorum() int { return c.quorum }

// Destroy interrupts the calls in flight (they release what they hold of a
// partial acquisition and fail with ErrDestroyed), waits for them, and closes
// the pools. Later calls fail with ErrDestroyed. Locks still held are left to
// expire. Destroy is idempotent and returns the first error from closing a
// pool.
func (c *Client) Destroy() error {
	if !c.inflight.Close() {
		return nil
	}
	c.waiting.Stop()
	c.wakeups.close()
	for _, m := range c.masters {
		m.conn.Close()
	}
	c.background.Wait()
	var first error
	for _, m := range c.masters {
		if err := m.pool.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
