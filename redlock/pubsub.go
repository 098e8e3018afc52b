package redlock

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/core"
	"github.com/leverege/lock/internal/pipeline"
)

// Wake-ups: a caller of this Client that waits for a key held elsewhere
// waits in the Client's line (core.Line) and is woken when the key is
// released, rather than only when its retry delay passes. Unlock announces
// a release on the pub/sub channel ReleasedChannel+key through one master
// that deleted it (the announcer, below), and while any caller of this
// Client waits for a key, a watcher per master subscribes to that key's
// channel and wakes the first in line. A lost announcement costs time,
// never safety: the timed retries remain.

// ReleasedChannel is the prefix of the pub/sub channel on which Unlock
// announces, through one of the masters that deleted the key, that a lock
// was released: it publishes the released value on ReleasedChannel+key.
const ReleasedChannel = "lock:released:"

// wakeups is the Client's side of the pub/sub: a watcher per master, and
// the announcer, a goroutine that publishes releases so that Unlock's
// caller does not pay for the write.
type wakeups struct {
	watchers      []*watcher
	announcements chan announcement
	announcer     sync.Once
	announcing    sync.WaitGroup
	quit          chan struct{}
}

type announcement struct {
	master int
	key    string
	value  lockValue
}

// watch subscribes to key's releases on every master (core.Line.Watch).
func (w *wakeups) watch(key string) {
	for _, x := range w.watchers {
		x.watch(key)
	}
}

// unwatch unsubscribes from key's releases (core.Line.Unwatch).
func (w *wakeups) unwatch(key string) {
	for _, x := range w.watchers {
		x.unwatch(key)
	}
}

// announce has the release of key holding value published through master
// i, in the background. Should the queue be full, the announcement is
// dropped: waiters still have their timed retries.
func (c *Client) announce(i int, key string, value lockValue) {
	w := &c.wakeups
	w.announcer.Do(func() {
		w.announcing.Add(1)
		go func() {
			defer w.announcing.Done()
			for {
				select {
				case a := <-w.announcements:
					c.publish(a)
				case <-w.quit:
					for {
						select {
						case a := <-w.announcements:
							c.publish(a)
						default:
							return
						}
					}
				}
			}
		}()
	})
	select {
	case w.announcements <- announcement{i, key, value}:
	default:
	}
}

// publish sends an announcement; no one waits for the answer.
func (c *Client) publish(a announcement) {
	p := &publication{}
	p.args = [2]any{ReleasedChannel + a.key, a.value.arg}
	p.call = pipeline.Call{Cmd: "PUBLISH", Args: p.args[:]}
	c.masters[a.master].conn.Send(&p.call)
}

// publication is a PUBLISH call with room for its arguments: one
// allocation.
type publication struct {
	call pipeline.Call
	args [2]any
}

// close stops the announcer once it has sent what is queued, and ends the
// watchers' sessions; Destroy then waits for them on Client.background.
func (w *wakeups) close() {
	close(w.quit) // the announcer sends what is queued, then the connections close
	w.announcer.Do(func() {})
	w.announcing.Wait()
	for _, x := range w.watchers {
		x.close()
	}
}

// How the subscription connections are kept: a PING every pingEvery, and a
// connection that has not answered one for deadAfter is replaced.
const (
	pingEvery  = time.Second
	deadAfter  = 3 * time.Second
	maxBackoff = 5 * time.Second
	// A session must last that long before a failure counts as new, and
	// the backoff starts again from its least.
	healthy = 10 * time.Second
)

// watcher keeps, while any caller of this process waits for a lock, one
// subscription connection to one master, subscribed to the released
// channels of the keys waited for, and turns each announcement into a
// wake-up (Client.waiting). A watcher that cannot reach its master, or whose
// sessions keep failing (a server that refuses SUBSCRIBE, a connection
// wrapper that cannot wait without a deadline), keeps trying, backing off up
// to maxBackoff; meanwhile waiters rely on the other
// masters' announcements and on their timed retries, so a lost
// announcement costs time, never safety.
type watcher struct {
	pool       *redis.Pool
	timeout    time.Duration   // the node timeout, for dialing
	line       *core.Line      // woken by announcements
	background *sync.WaitGroup // the Client's: counts the session
	stop       chan struct{}   // closed by Destroy

	mu      sync.Mutex
	want    map[string]bool // channels wanted
	running bool            // a session goroutine runs
	closed  bool
	kick    chan struct{} // the running session's: want changed

	dialer pipeline.Dialer
}

func newWatcher(c *Client, pool *redis.Pool) *watcher {
	return &watcher{pool: pool, timeout: c.opts.nodeTimeout, line: &c.waiting, background: &c.background,
		stop: make(chan struct{}), want: make(map[string]bool)}
}

// watch subscribes to key's releases.
func (w *watcher) watch(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.want[ReleasedChannel+key] = true
	if !w.running {
		w.running = true
		w.kick = make(chan struct{}, 1)
		w.background.Add(1)
		go w.session(w.kick)
		return
	}
	nudge(w.kick)
}

// unwatch unsubscribes from key's releases.
func (w *watcher) unwatch(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.want, ReleasedChannel+key)
	if w.running {
		nudge(w.kick)
	}
}

// close ends the session; Destroy waits for it on Client.background.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// session connects, serves until the connection fails, and reconnects,
// until nothing is wanted any more or the Client is destroyed.
func (w *watcher) session(kick chan struct{}) {
	defer w.background.Done()
	backoff := 50 * time.Millisecond
	for {
		w.mu.Lock()
		if w.closed || len(w.want) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		began := time.Now()
		if conn, err := w.dial(); err == nil {
			w.serve(conn, kick)
			conn.Close()
		}
		if time.Since(began) > healthy {
			backoff = 50 * time.Millisecond
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// dial opens a connection of its own with the pool's dial function (not a
// pooled one: it is closed from another goroutine while its reader waits,
// which a redigo connection allows and a pooled one does not), within the
// node timeout even when that function ignores contexts (see
// pipeline.Dialer).
func (w *watcher) dial() (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	return w.dialer.Get(ctx, func() (redis.Conn, error) {
		if w.pool.DialContext != nil {
			return w.pool.DialContext(ctx)
		}
		return w.pool.Dial()
	})
}

// serve subscribes to what is wanted, keeps the subscriptions in step with
// it, and hands announcements to the Client's waiters, until the connection
// fails, nothing is wanted, or the Client is destroyed.
func (w *watcher) serve(conn redis.Conn, kick chan struct{}) {
	var pong atomic.Int64 // unix nanoseconds of the last sign of life
	pong.Store(time.Now().UnixNano())
	quit := make(chan struct{})
	go func() {
		defer close(quit)
		psc := redis.PubSubConn{Conn: conn}
		for {
			switch m := psc.ReceiveWithTimeout(0).(type) {
			case redis.Message:
				w.line.Released(strings.TrimPrefix(m.Channel, ReleasedChannel), string(m.Data))
			case redis.Pong, redis.Subscription:
				pong.Store(time.Now().UnixNano())
			case error:
				return
			}
		}
	}()
	have := make(map[string]bool)
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	nudge(kick)
	for {
		select {
		case <-kick:
			if !bounded(conn, deadAfter, func() bool { return w.sync(conn, have) }) {
				conn.Close()
				<-quit
				return
			}
		case <-tick.C:
			if time.Since(time.Unix(0, pong.Load())) > deadAfter ||
				!bounded(conn, deadAfter, func() bool { return conn.Send("PING") == nil && conn.Flush() == nil }) {
				conn.Close()
				<-quit
				return
			}
		case <-quit:
			return
		case <-w.stop:
			conn.Close()
			<-quit
			return
		}
	}
}

// bounded runs write, which writes to conn, and closes conn should it take
// longer than d: a master that stopped reading, its socket buffers full,
// would otherwise hold the write, which no other close reaches (only this
// session closes conn), for as long as the write timeout, if the pool's
// dial set one. It reports whether write succeeded in time.
func bounded(conn redis.Conn, d time.Duration, write func() bool) bool {
	t := time.AfterFunc(d, func() { conn.Close() })
	ok := write()
	return t.Stop() && ok
}

// sync sends the SUBSCRIBE and UNSUBSCRIBE that bring have to what is
// wanted. It reports false when the connection should end: it failed, or
// nothing is wanted.
func (w *watcher) sync(conn redis.Conn, have map[string]bool) bool {
	var sub, unsub []any
	w.mu.Lock()
	for ch := range w.want {
		if !have[ch] {
			sub = append(sub, ch)
			have[ch] = true
		}
	}
	for ch := range have {
		if !w.want[ch] {
			unsub = append(unsub, ch)
			delete(have, ch)
		}
	}
	empty := len(w.want) == 0
	w.mu.Unlock()
	if empty {
		return false
	}
	if len(sub) > 0 && conn.Send("SUBSCRIBE", sub...) != nil {
		return false
	}
	if len(unsub) > 0 && conn.Send("UNSUBSCRIBE", unsub...) != nil {
		return false
	}
	return conn.Flush() == nil
}
