package benchmarks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/redlock"
)

// acksNodeTimeout is the node timeout of BenchmarkReplicaAcks: replica
// acknowledgements need at least 200 ms (a master ends a WAIT that times
// out on its 100 ms tick); both cases use it, so that only the WAIT
// differs.
const acksNodeTimeout = 250 * time.Millisecond

// BenchmarkReplicaAcks is the cost of redlock.WithReplicaAcks(1), a WAIT
// after each acquisition (and extension) on every master: the Sequential
// and Parallel cycles at N=3, on three masters of their own that each
// have one replica, without it (acks=0) and with it (acks=1).
func BenchmarkReplicaAcks(b *testing.B) {
	addrs := replicatedMasters(b, 3)
	for _, tc := range []struct {
		name string
		run  func(*testing.B, locker)
	}{{"Sequential", sequential}, {"Parallel", parallel}} {
		b.Run(tc.name+"/N=3", func(b *testing.B) {
			for _, acks := range []int{0, 1} {
				b.Run(fmt.Sprintf("acks=%d", acks), func(b *testing.B) {
					c, err := redlock.New(newPools(addrs), redlock.WithNodeTimeout(acksNodeTimeout), redlock.WithReplicaAcks(acks))
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

// replicatedMasters starts n masters, each with one replica, for this
// benchmark alone (replication traffic would weigh on the others), and
// waits until every replica streams from its master. They stop when the
// benchmark ends.
func replicatedMasters(b *testing.B, n int) []string {
	b.Helper()
	bin, err := redisServerBinary()
	if err != nil {
		b.Fatal(err)
	}
	var addrs []string
	for range n {
		addr, srv, err := startServer(bin, "--repl-diskless-sync-delay", "0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(srv.kill)
		host, port, _ := strings.Cut(addr, ":")
		_, rsrv, err := startServer(bin, "--replicaof", host, port)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(rsrv.kill)
		if err := waitAcked(addr); err != nil {
			b.Fatal(err)
		}
		addrs = append(addrs, addr)
	}
	return addrs
}

// waitAcked waits (at most 15 s) until a write on addr is acknowledged by
// one replica: after a sync a replica counts for WAIT only once it has
// acknowledged its first offset.
func waitAcked(addr string) error {
	c, err := redis.Dial("tcp", addr, redis.DialReadTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Do("SET", "bench:acked", "1"); err != nil {
			return err
		}
		if n, err := redis.Int(c.Do("WAIT", 1, 100)); err == nil && n >= 1 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: no replica acknowledged within 15s", addr)
}
