package benchmarks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// numMasters redis-server processes are started (once, on first use); a
// case with N masters uses the first N.
const numMasters = 5

// ioTimeout bounds dialing, and every read and write, on every connection
// the benchmarks open, whichever implementation uses it. Our redlock bounds
// each command further by its node timeout (through the context); redsync's
// redigo adapter and the floor call plain Do, so this is their only bound.
const ioTimeout = 2 * time.Second

// redisServerEnv may name the redis-server binary; by default it is looked
// up on PATH, then at /usr/bin/redis-server.
const redisServerEnv = "LOCK_BENCH_REDIS_SERVER"

var masters struct {
	once  sync.Once
	addrs []string
	procs []*server
	err   error
}

// server is one running redis-server; exited is closed once it has exited
// (and been waited for).
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// servers returns the addresses of the numMasters masters, starting them
// the first time. TestMain stops them.
func servers(tb testing.TB) []string {
	tb.Helper()
	masters.once.Do(func() {
		masters.addrs, masters.procs, masters.err = startServers(numMasters)
	})
	if masters.err != nil {
		tb.Fatalf("starting redis-server: %v", masters.err)
	}
	return masters.addrs
}

// stopServers kills every master started by servers.
func stopServers() {
	for _, p := range masters.procs {
		p.kill()
	}
	masters.procs = nil
}

func redisServerBinary() (string, error) {
	if p := os.Getenv(redisServerEnv); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	return "", fmt.Errorf("redis-server not found on PATH nor at /usr/bin/redis-server (apt-get install redis-server, or set %s)", redisServerEnv)
}

func startServers(n int) ([]string, []*server, error) {
	bin, err := redisServerBinary()
	if err != nil {
		return nil, nil, err
	}
	var (
		addrs []string
		procs []*server
	)
	for range n {
		// A free port is picked by the kernel and released before
		// redis-server binds it; another process may take it in between,
		// so a start that fails is tried again on another port.
		var (
			addr string
			srv  *server
		)
		for try := 1; ; try++ {
			addr, srv, err = startServer(bin)
			if err == nil || try == 3 {
				break
			}
		}
		if err != nil {
			for _, p := range procs {
				p.kill()
			}
			return nil, nil, err
		}
		addrs, procs = append(addrs, addr), append(procs, srv)
	}
	return addrs, procs, nil
}

// startServer starts one redis-server on a free loopback port, without
// persistence and with extra arguments, and waits (at most 5 s) until it
// answers PING.
func startServer(bin string, extra ...string) (string, *server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	cmd := exec.Command(bin, append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", os.TempDir(), "--loglevel", "warning"}, extra...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	srv := &server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-srv.exited:
			return "", nil, fmt.Errorf("redis-server on %s exited: %s", addr, strings.TrimSpace(out.String()))
		default:
		}
		if ping(addr) == nil {
			return addr, srv, nil
		}
		if time.Now().After(deadline) {
			srv.kill()
			return "", nil, fmt.Errorf("redis-server on %s did not answer within 5s: %s", addr, strings.TrimSpace(out.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do("PING")
	return err
}

// commandsProcessed returns the sum over addrs of total_commands_processed
// (INFO stats). Redis counts commands that scripts run (redis.call) as well
// as the EVAL/EVALSHA itself, and counts a command before replying to the
// INFO that reads the counter only in later readings: of two readings, the
// later includes the earlier INFO, once per master.
func commandsProcessed(addrs []string) (int64, error) {
	var sum int64
	for _, addr := range addrs {
		c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(ioTimeout), redis.DialReadTimeout(ioTimeout))
		if err != nil {
			return 0, err
		}
		info, err := redis.String(c.Do("INFO", "stats"))
		c.Close()
		if err != nil {
			return 0, err
		}
		v, ok := infoField(info, "total_commands_processed")
		if !ok {
			return 0, errors.New("INFO stats has no total_commands_processed")
		}
		sum += v
	}
	return sum, nil
}

func infoField(info, field string) (int64, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && k == field {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
