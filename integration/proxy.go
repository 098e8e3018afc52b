package integration

// Link faults between the tests and the masters: an in-process TCP proxy on
// 127.0.0.1 in front of each master.
//
// This is our own proxy, not toxiproxy's Go packages. toxiproxy v2.5.0 (the
// newest the module proxy serves) was tried in-process and dropped. It
// panicked ("index out of range" in ToxicLink.AddToxic, from a background
// goroutine, which kills the test binary) when faults were toggled while
// connections were closing: ToxicLink.RemoveToxic skips a link whose stub is
// already closed but ToxicCollection still splices its chain, so that link's
// stubs and the chain disagree from then on. Its reset_peer can send RST only
// on connections opened after the toxic was added. There is also no way to
// wait for its connection goroutines on Close.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// ErrProxyClosed is returned by the fault methods of a closed [Proxy].
var ErrProxyClosed = errors.New("integration: proxy is closed")

const (
	proxyDialTimeout = 2 * time.Second
	proxyChunkQueue  = 64       // chunks read ahead per direction
	proxyReadBuffer  = 32 << 10 // bytes per read
)

type fault int

const (
	faultNone fault = iota
	faultBlackhole
	faultReset
)

// proxyState is what the pumps consult for every chunk. changed is closed
// (and replaced) on every change, to wake the pumps that wait on a state.
type proxyState struct {
	fault   fault
	latency time.Duration
	changed chan struct{}
}

// Proxy is a TCP proxy on 127.0.0.1 in front of one master that injects link
// faults on command: [Proxy.Blackhole], [Proxy.Reset], [Proxy.Latency], all
// undone by [Proxy.Heal]. Faults act at once on the connections already open
// and on new ones alike.
//
// Every accepted connection gets its own connection to the upstream address,
// dialled when it is accepted. A master restarted on the same Addr is picked
// up by the next connection. A connection the master closes is closed for
// the client (FIN, or RST if the master reset it), after the latency if one
// is set. Clients only see this once a blackhole ends.
//
// While the master is down (stopped, killed), the proxy still accepts (the
// kernel completes the handshake) and then resets the connection because the
// upstream dial failed. So through the proxy a down master reads as
// ECONNRESET, at dial or on the first command, not ECONNREFUSED. Under a
// blackhole such a connection stays silent instead, until the blackhole ends.
//
// The methods are safe for concurrent use. Close releases everything:
// listener, connections and goroutines.
type Proxy struct {
	upstream string
	ln       net.Listener
	addr     string

	ctx    context.Context // cancelled by Close: aborts upstream dials
	cancel context.CancelFunc

	mu     sync.Mutex // guards everything below
	st     proxyState
	links  map[*proxyLink]struct{}
	closed bool

	wg sync.WaitGroup // the accept loop and every connection's goroutines
}

// NewProxy starts a proxy listening on 127.0.0.1 (a port chosen by the
// kernel) that forwards to upstream, typically a [Master.Addr]. Close it with
// [Proxy.Close].
func NewProxy(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("integration: proxy upstream %q: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("integration: proxy to %s: %w", upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		upstream: upstream,
		ln:       ln,
		addr:     ln.Addr().String(),
		ctx:      ctx,
		cancel:   cancel,
		st:       proxyState{changed: make(chan struct{})},
		links:    map[*proxyLink]struct{}{},
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns "127.0.0.1:PORT", the address clients dial. It is the same for
// the life of the proxy, faults included.
func (p *Proxy) Addr() string { return p.addr }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

func (p *Proxy) String() string { return p.addr + "->" + p.upstream }

// Conns returns the number of client connections the proxy currently
// carries.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Blackhole cuts the link off silently. From now on no data passes in either
// direction, on the open connections and on new ones, and nothing is closed:
// no FIN, no RST, not even one coming from the master. New connections are
// still accepted (the kernel completes the handshake), so a client's dial
// succeeds and its command hangs until its own read timeout or context
// deadline. Data is dropped, never delivered later. A request sent during the
// blackhole never reaches the master, and a reply in flight never reaches
// the client. A close (FIN or RST) that arrives during the blackhole is held
// and passed on when it ends.
//
// It replaces a [Proxy.Reset] and keeps a [Proxy.Latency]. Calling it again
// is a no-op.
func (p *Proxy) Blackhole() error {
	return p.set(func(st *proxyState) { st.fault = faultBlackhole })
}

// Reset cuts the link off loudly. Every open connection is reset at once
// (RST to the client and to the master), and so is every new connection as
// soon as it is accepted. Commands fail fast with ECONNRESET (or EPIPE, or
// io.EOF after a write that raced the RST). A new connection's dial itself
// may already fail with ECONNRESET.
//
// It replaces a [Proxy.Blackhole] and keeps a [Proxy.Latency]. Calling it
// again is a no-op.
func (p *Proxy) Reset() error {
	return p.set(func(st *proxyState) { st.fault = faultReset })
}

// Latency delays all data from the master to the client (the replies) by d,
// on open connections and on new ones. Each chunk is delivered d after the
// proxy read it, so pipelined replies are not delayed cumulatively. Requests
// pass at once. Latency(0) removes the delay, and a new value replaces the
// old one, also for chunks already waiting. It adds to a [Proxy.Blackhole]
// or [Proxy.Reset] and does not replace them.
func (p *Proxy) Latency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("integration: proxy %s: negative latency %v", p, d)
	}
	return p.set(func(st *proxyState) { st.latency = d })
}

// Heal removes every fault (blackhole, reset, latency). Connections that
// survived the fault carry data again. Connections a Reset closed stay
// closed. After a Blackhole, the data sent during it is gone, so a client
// that timed out should have dropped its connection (redigo does).
func (p *Proxy) Heal() error {
	return p.set(func(st *proxyState) { *st = proxyState{} })
}

// Close stops listening, closes every connection (FIN) and returns once all
// the proxy's goroutines have ended. It is idempotent. After it, the fault
// methods return [ErrProxyClosed].
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.st.changed)
	p.st.changed = make(chan struct{})
	links := p.linkList()
	p.mu.Unlock()

	err := p.ln.Close()
	p.cancel()
	for _, l := range links {
		l.kill(false)
	}
	p.wg.Wait()
	return err
}

// set applies a state change and wakes the pumps. Reset kills every open
// connection. Leaving a blackhole kills the connections whose upstream dial
// had failed.
func (p *Proxy) set(f func(*proxyState)) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrProxyClosed
	}
	old := p.st
	f(&p.st)
	close(old.changed)
	p.st.changed = make(chan struct{})
	var kill []*proxyLink
	for l := range p.links {
		if p.st.fault == faultReset || (p.st.fault != faultBlackhole && l.server == nil) {
			kill = append(kill, l)
		}
	}
	p.mu.Unlock()
	for _, l := range kill {
		l.kill(true)
	}
	return nil
}

func (p *Proxy) state() proxyState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *Proxy) linkList() []*proxyLink {
	links := make([]*proxyLink, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: try again
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve dials the upstream for one accepted client connection and starts
// its pumps.
func (p *Proxy) serve(client net.Conn) {
	if p.state().fault == faultReset {
		resetClose(client)
		return
	}
	d := net.Dialer{Timeout: proxyDialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.upstream)
	if err != nil {
		server = nil // the client side is reset, now or when a blackhole ends
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		closeBoth(client, server, false)
		return
	case p.st.fault == faultReset, server == nil && p.st.fault != faultBlackhole:
		closeBoth(client, server, true)
		return
	}
	l := &proxyLink{p: p, client: client, server: server, done: make(chan struct{})}
	p.links[l] = struct{}{}
	if server == nil {
		// Dial failed during a blackhole: swallow what the client sends
		// until the blackhole ends (set kills the link then).
		l.ended = 1
		p.wg.Go(func() { l.pump(client, nil, false) })
		return
	}
	p.wg.Go(func() { l.pump(client, server, false) })
	p.wg.Go(func() { l.pump(server, client, true) })
}

// proxyLink is one client connection and its upstream connection.
type proxyLink struct {
	p      *Proxy
	client net.Conn
	server net.Conn // nil if the upstream dial failed (only during a blackhole)

	once sync.Once
	done chan struct{} // closed by kill

	mu    sync.Mutex
	ended int // directions whose end (EOF) has been passed on
}

// chunk is what one read produced: data, or the end of the source (eof) and
// whether that end was a reset.
type chunk struct {
	data []byte
	at   time.Time // when the proxy read it
	eof  bool
	rst  bool
}

// pump moves one direction: a reader goroutine feeds a queue, this goroutine
// delivers each chunk under the current faults. down is master -> client.
func (l *proxyLink) pump(src, dst net.Conn, down bool) {
	q := make(chan chunk, proxyChunkQueue)
	l.p.wg.Go(func() { l.read(src, q) })
	for {
		var c chunk
		select {
		case c = <-q:
		case <-l.done:
			return
		}
		if !l.deliver(c, dst, down) {
			return
		}
	}
}

// read reads src until it ends, queueing chunks and then the end.
func (l *proxyLink) read(src net.Conn, q chan<- chunk) {
	buf := make([]byte, proxyReadBuffer)
	for {
		n, err := src.Read(buf)
		c := chunk{at: time.Now()}
		if n > 0 {
			c.data = slices.Clone(buf[:n])
		}
		if err != nil && n == 0 {
			c.eof = true
			c.rst = !errors.Is(err, io.EOF)
		}
		if n > 0 || c.eof {
			select {
			case q <- c:
			case <-l.done:
				return
			}
		}
		if c.eof {
			return
		}
		if err != nil { // data and an error together: report the error next
			select {
			case q <- chunk{at: time.Now(), eof: true, rst: !errors.Is(err, io.EOF)}:
			case <-l.done:
			}
			return
		}
	}
}

// deliver passes one chunk on, honouring the faults. It returns false once
// the pump should stop.
func (l *proxyLink) deliver(c chunk, dst net.Conn, down bool) bool {
	for {
		st := l.p.state()
		switch st.fault {
		case faultReset:
			l.kill(true) // set does it too; this only closes a race
			return false
		case faultBlackhole:
			if !c.eof {
				return true // dropped
			}
			// A close is held, not dropped: wait for the blackhole to end.
			select {
			case <-st.changed:
				continue
			case <-l.done:
				return false
			}
		}
		if dst == nil { // no upstream, and no blackhole any more
			l.kill(true)
			return false
		}
		if down && st.latency > 0 {
			if wait := time.Until(c.at.Add(st.latency)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-st.changed: // new faults or latency: decide again
				case <-l.done:
					t.Stop()
					return false
				}
				t.Stop()
				continue
			}
		}
		if c.eof {
			if c.rst {
				l.kill(true)
				return false
			}
			l.endDirection(dst)
			return false
		}
		if _, err := dst.Write(c.data); err != nil {
			l.kill(true)
			return false
		}
		return true
	}
}

// endDirection passes an EOF on as a half-close of dst. The link is closed
// once both directions have ended.
func (l *proxyLink) endDirection(dst net.Conn) {
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	l.mu.Lock()
	l.ended++
	both := l.ended == 2
	l.mu.Unlock()
	if both {
		l.kill(false)
	}
}

// kill closes both connections, with RST if rst (SO_LINGER 0), and forgets
// the link. Only the first call does anything.
func (l *proxyLink) kill(rst bool) {
	l.once.Do(func() {
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
		close(l.done)
		closeBoth(l.client, l.server, rst)
	})
}

func closeBoth(client, server net.Conn, rst bool) {
	for _, c := range []net.Conn{client, server} {
		if c == nil {
			continue
		}
		if rst {
			resetClose(c)
		} else {
			_ = c.Close()
		}
	}
}

// resetClose closes c with RST instead of FIN.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// ---------------------------------------------------------------------------
// Cluster convenience

var (
	clusterProxiesMu sync.Mutex
	clusterProxies   = map[*Cluster][]*Proxy{}
)

// Proxies returns one [Proxy] per master, in Masters order. It creates them
// on the first call for c and returns the same ones afterwards. They are
// closed with t.Cleanup of the first call's t, and then forgotten, so a later
// call creates new ones on new addresses. Pass the t that owns the cluster:
// with [StartT], the proxies are then closed before the cluster, because
// cleanups run last-registered first. [Cluster.Close] does not close them. A
// proxy keeps working across Stop/Start/Kill/Restart of its master, whose
// Addr does not change.
func (c *Cluster) Proxies(t testing.TB) []*Proxy {
	t.Helper()
	clusterProxiesMu.Lock()
	defer clusterProxiesMu.Unlock()
	if ps, ok := clusterProxies[c]; ok {
		return slices.Clone(ps)
	}
	ps := make([]*Proxy, 0, len(c.Masters))
	for _, m := range c.Masters {
		p, err := NewProxy(m.Addr())
		if err != nil {
			for _, p := range ps {
				_ = p.Close()
			}
			t.Fatalf("integration: proxy for master %d: %v", m.Index, err)
		}
		ps = append(ps, p)
	}
	clusterProxies[c] = ps
	t.Cleanup(func() {
		clusterProxiesMu.Lock()
		if slices.Equal(clusterProxies[c], ps) {
			delete(clusterProxies, c)
		}
		clusterProxiesMu.Unlock()
		for _, p := range ps {
			if err := p.Close(); err != nil {
				t.Errorf("integration: close proxy %s: %v", p, err)
			}
		}
	})
	return slices.Clone(ps)
}

// ProxyAddrs returns the Addr of each of c.Proxies(t), in Masters order.
// These are the addresses to give the library under test instead of
// [Cluster.Addrs].
func (c *Cluster) ProxyAddrs(t testing.TB) []string {
	t.Helper()
	ps := c.Proxies(t)
	addrs := make([]string, len(ps))
	for i, p := range ps {
		addrs[i] = p.Addr()
	}
	return addrs
}
