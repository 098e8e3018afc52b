package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/redlock"
)

// restartDelay is the restart protection's delay in BenchmarkRestartDelay:
// at least the ttl, as the protection requires.
const restartDelay = ttl

// BenchmarkRestartDelay is the cost of the restart protection
// (redlock.WithRestartDelay), whose acquisition runs a script that reads
// the master's clock, uptime and replication ID beside the SET: the cycle
// of Sequential and Parallel at N=3, without it (impl=ours) and with it
// (impl=ours-restart), on the same masters.
func BenchmarkRestartDelay(b *testing.B) {
	addrs := servers(b)[:3]
	protected(b, addrs)
	for _, tc := range []struct {
		name string
		run  func(*testing.B, locker)
	}{{"Sequential", sequential}, {"Parallel", parallel}} {
		b.Run(tc.name+"/N=3", func(b *testing.B) {
			for _, impl := range []string{implOurs, "ours-restart"} {
				b.Run("impl="+impl, func(b *testing.B) {
					var opts []redlock.Option
					if impl != implOurs {
						opts = append(opts, redlock.WithRestartDelay(restartDelay))
					}
					c, err := redlock.New(newPools(addrs), opts...)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = c.Destroy() })
					tc.run(b, ours{c})
				})
			}
		})
	}
}

// protected makes masters whose votes the restart protection counts: it
// waits until each has been up for restartDelay (they start with the
// benchmarks), and plants a marker (MarkerKey) born an hour ago, in the
// form that every version of the protection reads (the server time in ms;
// a version that records the replication ID adds it).
func protected(b *testing.B, addrs []string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartDelay+30*time.Second)
	defer cancel()
	for _, addr := range addrs {
		c, err := redis.DialContext(ctx, "tcp", addr, redis.DialReadTimeout(ioTimeout))
		if err != nil {
			b.Fatal(err)
		}
		for {
			info, err := redis.String(c.Do("INFO", "server"))
			if err != nil {
				b.Fatal(err)
			}
			if up, ok := infoField(info, "uptime_in_seconds"); ok && time.Duration(up)*time.Second >= restartDelay {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("%s: not up for %v in time", addr, restartDelay)
			case <-time.After(100 * time.Millisecond):
			}
		}
		t, err := redis.Int64s(c.Do("TIME"))
		if err != nil {
			b.Fatal(err)
		}
		born := t[0]*1000 - time.Hour.Milliseconds()
		if _, err := c.Do("SET", redlock.MarkerKey, fmt.Sprint(born)); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
