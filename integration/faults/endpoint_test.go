package faults

// Helpers for the scenarios on replicated masters (failover_test.go,
// demoted_test.go, acks_test.go, eviction_test.go): a managed service's
// primary endpoint that a failover moves, masters with replicas as
// redis-server processes, and a record of what every master answered.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
	"github.com/leverege/lock/redlock"
)

// endpoint is a managed service's primary endpoint: one address on
// 127.0.0.1 that leads to one node and that a failover moves to another,
// as the service's DNS name moves to a promoted replica. integration.Proxy
// forwards to one upstream for its whole life, hence this one.
//
// Every accepted connection is joined to a connection to the node the
// endpoint leads to at that moment; switchTo closes the connections open
// (clients see them end, as they do when the old node dies, and dial
// again).
type endpoint struct {
	ln net.Listener

	mu       sync.Mutex
	upstream string
	links    map[*epLink]struct{}
	closed   bool

	wg sync.WaitGroup // the accept loop and every link's goroutines
}

type epLink struct{ client, server net.Conn }

func (l *epLink) close() {
	_ = l.client.Close()
	_ = l.server.Close()
}

// newEndpoint starts an endpoint leading to upstream; it is closed when t
// ends.
func newEndpoint(t *testing.T, upstream string) *endpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := &endpoint{ln: ln, upstream: upstream, links: map[*epLink]struct{}{}}
	e.wg.Go(e.accept)
	t.Cleanup(e.close)
	return e
}

// Addr is the address clients dial; it never changes.
func (e *endpoint) Addr() string { return e.ln.Addr().String() }

// switchTo makes the endpoint lead to upstream and closes the connections
// that lead to the node it led to before.
func (e *endpoint) switchTo(upstream string) {
	e.mu.Lock()
	e.upstream = upstream
	old := e.links
	e.links = map[*epLink]struct{}{}
	e.mu.Unlock()
	for l := range old {
		l.close()
	}
}

func (e *endpoint) accept() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // closed
		}
		e.mu.Lock()
		up, closed := e.upstream, e.closed
		e.mu.Unlock()
		if closed {
			_ = c.Close()
			return
		}
		e.wg.Go(func() { e.serve(c, up) })
	}
}

func (e *endpoint) serve(client net.Conn, upstream string) {
	server, err := net.DialTimeout("tcp", upstream, time.Second)
	if err != nil {
		_ = client.Close() // the node is down: the client sees its connection end
		return
	}
	l := &epLink{client, server}
	e.mu.Lock()
	if e.closed || e.upstream != upstream { // switched while dialing
		e.mu.Unlock()
		l.close()
		return
	}
	e.links[l] = struct{}{}
	e.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		l.close() // either side ending ends both
		e.mu.Lock()
		delete(e.links, l)
		e.mu.Unlock()
	}
	e.wg.Go(func() { pipe(server, client) })
	pipe(client, server)
}

func (e *endpoint) close() {
	e.mu.Lock()
	e.closed = true
	links := e.links
	e.links = map[*epLink]struct{}{}
	e.mu.Unlock()
	_ = e.ln.Close()
	for l := range links {
		l.close()
	}
	e.wg.Wait()
}

// TestEndpointSwitches checks the endpoint itself: it leads to one server,
// then, once switched, to the other, and the connection opened before the
// switch is closed.
func TestEndpointSwitches(t *testing.T) {
	a, b := redistest.StartServer(t), redistest.StartServer(t)
	ep := newEndpoint(t, a.Addr())
	runID := func(s *redistest.Server) string {
		info, err := s.Info(t.Context(), "server")
		require.NoError(t, err)
		return info["run_id"]
	}
	viaEndpoint := func(conn redis.Conn) (string, error) {
		info, err := redis.String(redis.DoContext(conn, t.Context(), "INFO", "server"))
		if err != nil {
			return "", err
		}
		_, rest, _ := strings.Cut(info, "run_id:")
		id, _, _ := strings.Cut(rest, "\r\n")
		return id, nil
	}
	old, err := redis.DialContext(t.Context(), "tcp", ep.Addr())
	require.NoError(t, err)
	defer old.Close()
	id, err := viaEndpoint(old)
	require.NoError(t, err)
	require.Equal(t, runID(a), id, "before the switch")

	ep.switchTo(b.Addr())
	_, err = viaEndpoint(old)
	require.Error(t, err, "the connection opened before the switch still works")
	conn, err := redis.DialContext(t.Context(), "tcp", ep.Addr())
	require.NoError(t, err)
	defer conn.Close()
	id, err = viaEndpoint(conn)
	require.NoError(t, err)
	require.Equal(t, runID(b), id, "after the switch")
}

// restartDelay is the restart protection's delay in these scenarios: a few
// seconds, so that they stay short; every ttl is within it.
const restartDelay = 3 * time.Second

// settle waits until every one of servers votes under the restart
// protection with delay d: for each, a client of that master alone, with
// the protection, retries a lock until it gets it. The first request
// writes the master's marker (born now), so this takes about d, up to a
// second more when a server has been up for less than d (uptime counts in
// whole seconds). A replica of one of servers gets the marker by
// replication: wait for it to sync afterwards.
func settle(t *testing.T, d time.Duration, servers ...*redistest.Server) {
	t.Helper()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		c := newClient(t, []string{s.Addr()}, redlock.WithRestartDelay(d), redlock.WithRetryCount(-1),
			redlock.WithRetryDelay(100*time.Millisecond), redlock.WithRetryJitter(0))
		wg.Go(func() {
			defer c.Destroy()
			ctx, cancel := context.WithTimeout(t.Context(), d+3*time.Second)
			defer cancel()
			lk, err := c.Lock(ctx, "settle", 100*time.Millisecond)
			if err == nil {
				err = lk.Unlock(ctx)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "master %s never voted under the restart protection", servers[i].Addr())
	}
}

// cutReplica makes replica stop consuming its master's writes: it is
// stopped (SIGSTOP) and its link is closed on the master's side, since
// bytes already in its socket would be applied when it resumes.
func cutReplica(t *testing.T, master, replica *redistest.Server) {
	t.Helper()
	require.NoError(t, replica.Pause(t.Context()))
	n, err := redis.Int(master.Do(t.Context(), "CLIENT", "KILL", "TYPE", "replica"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1, "no replica link to cut")
}

// waitStreaming waits until n replicas of master acknowledge its writes
// (WAIT n). A replica's link is up once it has loaded the sync, and its
// master then shows it "online", but after a diskless sync the master
// streams writes to it only from its first acknowledgement, which a
// replica sends once a second: until then WAIT does not count it.
func waitStreaming(t *testing.T, master *redistest.Server, n int) {
	t.Helper()
	conn, err := master.Dial(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	acked := 0
	deadline := time.Now().Add(5 * time.Second)
	for acked < n && time.Now().Before(deadline) {
		_, err := redis.DoContext(conn, t.Context(), "SET", "harness:streaming", 1, "PX", 1000)
		require.NoError(t, err)
		acked, err = redis.Int(redis.DoContext(conn, t.Context(), "WAIT", n, 100))
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, acked, n, "%s: replicas acknowledging", master.Addr())
	_, err = redis.DoContext(conn, t.Context(), "DEL", "harness:streaming")
	require.NoError(t, err)
}

// failover kills master, promotes replica (resumed first if paused) and
// moves ep to it; it returns when the endpoint leads to the promoted
// replica.
func failover(t *testing.T, ep *endpoint, master, replica *redistest.Server) {
	t.Helper()
	require.NoError(t, master.Kill(t.Context()))
	require.NoError(t, replica.Resume(t.Context()))
	require.NoError(t, replica.Promote(t.Context()))
	if ep != nil {
		ep.switchTo(replica.Addr())
	}
}

// replID is a server's master_replid and master_replid2.
func replID(t *testing.T, s *redistest.Server) (id, id2 string) {
	t.Helper()
	info, err := s.Info(t.Context(), "replication")
	require.NoError(t, err)
	return info["master_replid"], info["master_replid2"]
}

// get reads key on s ("" when absent).
func get(t *testing.T, s *redistest.Server, key string) string {
	t.Helper()
	v, err := redis.String(s.Do(t.Context(), "GET", key))
	if errors.Is(err, redis.ErrNil) {
		return ""
	}
	require.NoError(t, err)
	return v
}

// plant sets key on s to another owner's value for ttl.
func plant(t *testing.T, s *redistest.Server, key string, ttl time.Duration) {
	t.Helper()
	_, err := s.Do(t.Context(), "SET", key, "another-owner", "PX", ttl.Milliseconds())
	require.NoError(t, err)
}

// waitGone waits (at most 5 s) until key is gone from s.
func waitGone(t *testing.T, s *redistest.Server, key string) {
	t.Helper()
	require.Eventually(t, func() bool { return get(t, s, key) == "" }, 5*time.Second, 5*time.Millisecond,
		"%s still on %s", key, s.Addr())
}

// answer is one event a Client told, and when.
type answer struct {
	at time.Time
	lock.Event
}

// answers records what a Client tells its observer.
type answers struct {
	mu   sync.Mutex
	list []answer
}

func (a *answers) Observe(e lock.Event) {
	a.mu.Lock()
	a.list = append(a.list, answer{time.Now(), e})
	a.mu.Unlock()
}

// of returns master node's answers to op ("acquire", "extend", "release").
func (a *answers) of(node int, op string) []answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []answer
	for _, e := range a.list {
		if e.Kind == lock.KindNode && e.Node == node && e.Op == op {
			out = append(out, e)
		}
	}
	return out
}

// masterEvents returns the KindMaster events: trouble masters told of.
func (a *answers) masterEvents() []lock.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []lock.Event
	for _, e := range a.list {
		if e.Kind == lock.KindMaster {
			out = append(out, e.Event)
		}
	}
	return out
}

// nodeErr returns master node's error in a failed call's error, or nil.
func nodeErr(err error, node int) error {
	var le *lock.Error
	if !errors.As(err, &le) {
		return nil
	}
	for _, n := range le.Nodes {
		if n.Node == node {
			return n.Err
		}
	}
	return nil
}
