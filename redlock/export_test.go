package redlock

import (
	"fmt"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// EchoThroughLink connects a link to pool's master, calls connected, then
// sends ECHO i, for i in [0, callers), from callers goroutines at once
// through it, and returns the replies that were not the caller's own.
func EchoThroughLink(pool *redis.Pool, timeout time.Duration, callers int, connected func()) (wrong []string, err error) {
	var readers sync.WaitGroup
	l := newLink(pool, timeout, &readers)
	defer func() { l.close(); readers.Wait() }()
	votes := make(chan vote, 1)
	l.send(&call{cmd: "PING", votes: votes, read: readAny})
	if v := <-votes; v.err != nil {
		return nil, v.err
	}
	connected()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range callers {
		wg.Go(func() {
			votes := make(chan vote, 1)
			want := fmt.Sprint(i)
			var got string
			c := &call{cmd: "ECHO", node: i, votes: votes, read: func(reply any) (int64, error) {
				s, err := redis.String(reply, nil)
				got = s
				return 0, err
			}}
			c.argv[0] = want
			c.args = c.argv[:1]
			<-start
			l.send(c)
			v := <-votes
			mu.Lock()
			defer mu.Unlock()
			switch {
			case v.err != nil:
				err = v.err
			case got != want:
				wrong = append(wrong, fmt.Sprintf("%s got %s", want, got))
			}
		})
	}
	close(start)
	wg.Wait()
	return wrong, err
}

// CloseAwaitingReplies connects a link to pool's master and sends it a
// BLPOP that the master answers (nil) after 300 ms. Once the link's reader
// waits for that reply, it sends a second BLPOP, which waits second (a
// BLPOP timeout: "0" is never, as a master that stopped answering would
// not answer), and closes the link. It waits at most limit for the link's
// reader to exit, and returns the two requests' failures and whether the
// reader exited.
func CloseAwaitingReplies(pool *redis.Pool, timeout, limit time.Duration, key, second string) (first, last error, exited bool) {
	var readers sync.WaitGroup
	l := newLink(pool, timeout, &readers)
	votes := make(chan vote, 2)
	l.send(&call{cmd: "PING", votes: votes, read: readAny})
	if v := <-votes; v.err != nil {
		l.close()
		return v.err, v.err, false
	}
	blpop := func(node int, k, wait string) *call {
		c := &call{cmd: "BLPOP", node: node, votes: votes, read: readAny}
		c.argv[0], c.argv[1] = k, wait
		c.args = c.argv[:2]
		return c
	}
	l.send(blpop(0, key+":first", "0.3"))
	time.Sleep(100 * time.Millisecond) // the reader now waits for that reply
	l.send(blpop(1, key+":second", second))
	l.close()
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
		exited = true
	case <-time.After(limit):
	}
	var errs [2]error
	for range 2 {
		select {
		case v := <-votes:
			errs[v.node] = v.err
		case <-time.After(limit):
		}
	}
	return errs[0], errs[1], exited
}

// Bounded is bounded, for the watcher's writes.
var Bounded = bounded
