package redlock_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/gomodule/redigo/redis"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/redlock"
)

// A Client over your own redigo pools, one per independent master. The
// pools should dial with DialContext and set read and write timeouts; the
// Client takes them over (Destroy closes them). It needs live masters, so
// this example is compiled but not run.
func ExampleNew() {
	var pools []*redis.Pool
	for _, addr := range []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"} {
		pools = append(pools, &redis.Pool{
			MaxIdle:     16,
			IdleTimeout: 4 * time.Minute,
			DialContext: func(ctx context.Context) (redis.Conn, error) {
				return redis.DialContext(ctx, "tcp", addr,
					redis.DialReadTimeout(time.Second), redis.DialWriteTimeout(time.Second))
			},
		})
	}
	c, err := redlock.New(pools,
		redlock.WithNamespace("myApp"),
		redlock.WithRetryCount(3),
		redlock.WithRestartDelay(time.Minute), // masters that restarted, were flushed or promoted vote after a minute
		redlock.WithNodeNames("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()

	ctx := context.Background()
	l, err := c.LockNs(ctx, "report", 30*time.Second)
	switch {
	case errors.Is(err, lockerr.ErrNotAcquired) && errors.Is(err, lock.ErrNoQuorum):
		log.Fatal("too few masters answer: ", err)
	case err != nil:
		log.Fatal("held elsewhere: ", err)
	}
	defer l.Unlock(ctx)
	// ... work within l.Expiration() ...

	// lock.Redis presents the Client as a lock.Locker, for lock.Do.
	err = lock.Do(ctx, lock.Redis(c), "nightly", 30*time.Second, func(ctx context.Context, l lock.Lock) error {
		return nil // stop when ctx ends: the lock was lost
	})
	if err != nil {
		log.Print(err)
	}
}
