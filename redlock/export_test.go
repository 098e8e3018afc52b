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
