// Package integration is a test harness that runs real Redis masters for the
// integration and fault tests of the lock library: in Docker containers
// (testcontainers-go), or as plain redis-server processes configured as
// production masters are (see "redis-server processes" below).
//
// The image is built locally by scripts/redis-image.sh (`make image`); no image
// is ever pulled. Every master publishes its port 6379 only on 127.0.0.1, on a
// host port chosen by the harness and fixed for the life of the container, so
// [Master.Addr] stays the same across Stop/Start/Kill/Restart. Tests talk to the
// masters only through those 127.0.0.1 addresses.
//
// Typical use:
//
//	c := integration.StartT(t, 3)
//	addrs := c.Addrs()                     // "127.0.0.1:PORT" each
//	require.NoError(t, c.Masters[0].Kill(t.Context()))
//
// # Clock drift
//
// [WithClockRate] makes the wall clock of every master of a [Start] run at a
// given rate of real time, to exercise Redlock's clock-drift allowance:
//
//	fast := integration.StartT(t, 1, integration.WithClockRate(1.005)) // 0.5% fast
//	normal := integration.StartT(t, 2)
//
// On a master with rate r, a key SET with PX 1000 expires after 1000/r ms of
// real time (995 ms at 1.005). The image carries a small LD_PRELOAD library,
// libclockrate (scripts/clockrate.c), at the path named by its label
// [ClockRateLabel]; WithClockRate sets LD_PRELOAD and [ClockRateEnv] in the
// container's environment, so the rate holds from the start of redis-server
// and again after every Stop/Start/Kill/Restart. It fakes only the wall clock
// (clock_gettime CLOCK_REALTIME[_COARSE], gettimeofday, time, timespec_get):
// what Redis 7 times with it runs at the rate (key TTLs and expiry, TIME,
// CLIENT PAUSE deadlines, blocking-command and idle-client timeouts), while
// CLOCK_MONOTONIC, sleeps and the event loop stay real. The fake clock equals
// the real one when redis-server starts, fake(t) = t0 + (t-t0)*r, so every
// restart resets the accumulated difference. (libfaketime cannot be used:
// Debian's redis-server is linked with jemalloc, and the two deadlock before
// main.)
//
// Environment:
//
//	LOCK_REDIS_IMAGE       image to run (default "lock-redis:7.0-clock1")
//	LOCK_HARNESS_VERBOSE   non-empty: show testcontainers' log output
//	LOCK_HARNESS_RUN_ID    optional: extra container label, for CI cleanup
//
// The Ryuk reaper is disabled (its image cannot be pulled here); the harness
// removes its own containers in [Cluster.Close] (registered with t.Cleanup by
// [StartT]). Containers carry the label [LabelKey]=true (and
// [LabelKey].run=$LOCK_HARNESS_RUN_ID when that is set), so leftovers of a
// killed test binary can be removed with
//
//	docker rm -f $(docker ps -aq --filter label=com.leverege.lock.harness=true)
//
// The redis-server process harness (TLS, ACL users, replicas, eviction)
// is package internal/redistest, which the library's own tests use too.
package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/gomodule/redigo/redis"
	"github.com/leverege/lock/internal/redistest"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// DefaultImage is the image used when LOCK_REDIS_IMAGE is not set. Its tag
	// changes with the image content (scripts/redis-image.sh), so that `make
	// image` builds the new image on machines that have an older one.
	DefaultImage = "lock-redis:7.0-clock1"
	// ImageEnv names the environment variable that overrides the image.
	ImageEnv = "LOCK_REDIS_IMAGE"
	// VerboseEnv names the environment variable that turns on testcontainers logs.
	VerboseEnv = "LOCK_HARNESS_VERBOSE"
	// RunIDEnv names an optional environment variable; its value labels every
	// container as LabelKey+".run", so a CI run can remove exactly its own
	// leftovers (see .ci/run).
	RunIDEnv = "LOCK_HARNESS_RUN_ID"
	// LabelKey is set to "true" on every container the harness creates.
	LabelKey = "com.leverege.lock.harness"
	// ClockRateLabel is the image label whose value is the path of
	// libclockrate inside the image; [WithClockRate] needs it.
	ClockRateLabel = "com.leverege.lock.clockrate"
	// ClockRateEnv names the container environment variable that libclockrate
	// reads: the rate of the wall clock relative to real time.
	ClockRateEnv = "LOCK_CLOCK_RATE"

	redisPort = "6379/tcp"

	dialConnectTimeout = 2 * time.Second
	dialIOTimeout      = 3 * time.Second

	defaultStartupTimeout = 60 * time.Second
	stopTimeout           = 5 * time.Second
	closeTimeout          = 60 * time.Second
	portAttempts          = 8
)

var baseArgs = []string{"--protected-mode", "no", "--save", "", "--appendonly", "no"}

// BaseArgs returns the redis-server arguments every master gets, before any
// [WithArgs] arguments (later arguments override earlier ones in Redis):
// reachable through the published port, and no persistence at all, so a
// stopped or killed master comes back empty.
func BaseArgs() []string { return append([]string(nil), baseArgs...) }

// Image returns the Redis image the harness runs: $LOCK_REDIS_IMAGE or [DefaultImage].
func Image() string {
	if img := os.Getenv(ImageEnv); img != "" {
		return img
	}
	return DefaultImage
}

// ErrImageMissing is returned (wrapped) by [Start] when the image is not present locally.
var ErrImageMissing = errors.New("redis image not found locally")

// ErrNoClockRate is returned (wrapped) by [Start] when [WithClockRate] asks
// for a rate other than 1 and the image has no libclockrate (no
// [ClockRateLabel] label), e.g. an official redis image.
var ErrNoClockRate = errors.New("redis image has no libclockrate")

// ---------------------------------------------------------------------------
// Options

type options struct {
	image          string
	args           []string
	startupTimeout time.Duration
	logger         tclog.Logger
	clockRate      float64           // 0: not set; 1: real time
	env            map[string]string // container environment, from clockRate
	err            error             // an invalid option
}

// Option configures [Start] and [StartT].
type Option func(*options)

// WithArgs appends redis-server arguments after [BaseArgs], for example AOF
// persistence for fault tests:
//
//	integration.WithArgs("--appendonly", "yes", "--appendfsync", "always")
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// WithImage runs img instead of [Image]().
func WithImage(img string) Option {
	return func(o *options) { o.image = img }
}

// WithStartupTimeout bounds how long one master may take to answer PING after
// its container starts (default 60s).
func WithStartupTimeout(d time.Duration) Option {
	return func(o *options) { o.startupTimeout = d }
}

// WithClockRate makes the wall clock of every master started with it run at
// rate times real speed from the start of redis-server: 1.005 is 0.5% fast,
// 0.99 is 1% slow, 1 is real time (the default; nothing is preloaded). The
// rate must be > 0 and at most 1e6, else [Start] fails. It needs an image
// built by scripts/redis-image.sh (see "Clock drift" in the package doc);
// [Start] fails with [ErrNoClockRate] otherwise.
func WithClockRate(rate float64) Option {
	return func(o *options) {
		if !(rate > 0 && rate <= 1e6) { // also rejects NaN
			o.err = fmt.Errorf("integration: WithClockRate(%v): the rate must be > 0 and <= 1e6", rate)
			return
		}
		o.clockRate = rate
	}
}

// WithLogger sends testcontainers' log output to l (default: discarded unless
// LOCK_HARNESS_VERBOSE is set).
func WithLogger(l tclog.Logger) Option {
	return func(o *options) { o.logger = l }
}

func buildOptions(opts []Option) options {
	o := options{startupTimeout: defaultStartupTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		if os.Getenv(VerboseEnv) != "" {
			o.logger = tclog.Default()
		} else {
			o.logger = tclog.NewNoopLogger()
		}
	}
	return o
}

// ---------------------------------------------------------------------------
// Process-wide setup

var envOnce sync.Once

// setupEnv must run before the first testcontainers call: testcontainers reads
// its configuration once per process.
func setupEnv() {
	envOnce.Do(func() {
		// The reaper (Ryuk) image cannot be pulled here; we clean up ourselves.
		// testcontainers only honours exactly lowercase "true".
		if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
			_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
		// Inside a container testcontainers would report the bridge gateway as
		// the host; ports are published on 127.0.0.1 only, so say so.
		if _, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !ok {
			_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
		}
	})
}

var (
	dockerOnce sync.Once
	dockerCli  client.APIClient
	dockerErr  error
)

// docker returns the Docker API client of a testcontainers provider (it
// negotiates the API version with the engine, 1.41 for Docker 20.10). It is
// used for what the container type does not offer: pause, unpause, kill.
// Callers defer cli.Close(): like testcontainers itself, that only closes idle
// connections (so no HTTP goroutines outlive an operation, for goleak), and
// the client stays usable.
func docker() (client.APIClient, error) {
	setupEnv()
	dockerOnce.Do(func() {
		p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
		if err != nil {
			dockerErr = fmt.Errorf("integration: connect to Docker: %w", err)
			return
		}
		dockerCli = p.Client()
		_ = p.Close() // closes idle connections only; the client stays usable
	})
	return dockerCli, dockerErr
}

// checkImage fails fast, with instructions, when the image is not present
// (testcontainers would otherwise try, and retry, to pull it). It returns the
// image's labels.
func checkImage(ctx context.Context, cli client.APIClient, img string) (map[string]string, error) {
	res, err := cli.ImageInspect(ctx, img)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("integration: %w: %q; build it with `scripts/redis-image.sh` (or `make image`)", ErrImageMissing, img)
		}
		return nil, fmt.Errorf("integration: inspect image %q: %w", img, err)
	}
	if res.Config == nil {
		return nil, nil
	}
	return res.Config.Labels, nil
}

// ---------------------------------------------------------------------------
// Host ports

func isPortConflict(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "address already in use") ||
		strings.Contains(s, "port is already allocated")
}

// ---------------------------------------------------------------------------
// Cluster

// Cluster is a set of independent Redis masters.
type Cluster struct {
	Masters []*Master
}

// Start starts n masters in parallel and returns once every one answers PING
// on its 127.0.0.1 address. On error it terminates what it started. A missing
// image is an error (wrapping [ErrImageMissing]) that says how to build it.
func Start(ctx context.Context, n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("integration: Start needs n >= 1, got %d", n)
	}
	o := buildOptions(opts)
	if o.err != nil {
		return nil, o.err
	}
	cli, err := docker()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	img := o.image
	if img == "" {
		img = Image()
	}
	labels, err := checkImage(ctx, cli, img)
	if err != nil {
		return nil, err
	}
	if o.clockRate != 0 && o.clockRate != 1 {
		lib := labels[ClockRateLabel]
		if lib == "" {
			return nil, fmt.Errorf("integration: %w: %q has no label %s; WithClockRate needs the image of scripts/redis-image.sh (`make image`)", ErrNoClockRate, img, ClockRateLabel)
		}
		o.env = map[string]string{
			"LD_PRELOAD": lib,
			ClockRateEnv: strconv.FormatFloat(o.clockRate, 'f', -1, 64),
		}
	}

	c := &Cluster{Masters: make([]*Master, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c.Masters[i], errs[i] = startMaster(ctx, i, img, o)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		started := &Cluster{}
		for _, m := range c.Masters {
			if m != nil {
				started.Masters = append(started.Masters, m)
			}
		}
		return nil, errors.Join(err, started.Close())
	}
	return c, nil
}

// StartT is [Start] for one test: it fails the test on error and registers
// [Cluster.Close] with t.Cleanup.
func StartT(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if os.Getenv(VerboseEnv) != "" {
		opts = append([]Option{WithLogger(tclog.TestLogger(t))}, opts...)
	}
	c, err := Start(t.Context(), n, opts...)
	if err != nil {
		t.Fatalf("integration: start %d Redis masters: %v", n, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("integration: close cluster: %v", err)
		}
	})
	return c
}

// Close terminates (stops and removes) every container. It is safe to call
// more than once and with masters in any state (running, stopped, paused).
func (c *Cluster) Close() error {
	if c == nil {
		return nil
	}
	errs := make([]error, len(c.Masters))
	var wg sync.WaitGroup
	for i, m := range c.Masters {
		wg.Go(func() { errs[i] = m.Terminate() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Addrs returns each master's address, "127.0.0.1:PORT", in Masters order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Masters))
	for i, m := range c.Masters {
		addrs[i] = m.Addr()
	}
	return addrs
}

// FlushAll runs FLUSHALL on every running master (stopped, killed, paused and
// terminated masters are skipped), in parallel.
func (c *Cluster) FlushAll(ctx context.Context) error {
	errs := make([]error, len(c.Masters))
	var wg sync.WaitGroup
	for i, m := range c.Masters {
		if !m.Running() {
			continue
		}
		wg.Go(func() {
			if _, err := m.Do(ctx, "FLUSHALL"); err != nil {
				errs[i] = fmt.Errorf("master %d (%s): FLUSHALL: %w", m.Index, m.Addr(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Master

// state is a master's place in its life (redistest.State).
type state = redistest.State

const (
	stateRunning    = redistest.StateRunning
	stateStopped    = redistest.StateStopped // Stop or Kill
	statePaused     = redistest.StatePaused
	stateTerminated = redistest.StateTerminated
)

// Master is one Redis master in its own container, published on a fixed
// 127.0.0.1 port.
type Master struct {
	// Index is the master's position in Cluster.Masters.
	Index int

	ctr       *testcontainers.DockerContainer
	port      int
	addr      string
	args      []string
	clockRate float64 // 1: real time
	wait      *pingStrategy

	mu    sync.Mutex // serialises lifecycle operations; not held by Dial/Do
	state state
}

func startMaster(ctx context.Context, index int, img string, o options) (*Master, error) {
	cmd := append(BaseArgs(), o.args...)
	labels := map[string]string{
		LabelKey:                   "true",
		LabelKey + ".master-index": strconv.Itoa(index),
	}
	if id := os.Getenv(RunIDEnv); id != "" {
		labels[LabelKey+".run"] = id
	}
	var lastErr error
	for range portAttempts {
		port, err := redistest.ReservePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ping := &pingStrategy{addr: addr, timeout: o.startupTimeout}
		ctr, err := testcontainers.Run(ctx, img,
			testcontainers.WithLogger(o.logger),
			testcontainers.WithEnv(o.env),
			testcontainers.WithExposedPorts(redisPort),
			testcontainers.WithCmd(cmd...),
			testcontainers.WithLabels(labels),
			testcontainers.WithLabels(map[string]string{LabelKey + ".port": strconv.Itoa(port)}),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort(redisPort): {{
						HostIP:   netip.AddrFrom4([4]byte{127, 0, 0, 1}),
						HostPort: strconv.Itoa(port),
					}},
				}
			}),
			testcontainers.WithWaitStrategy(ping),
		)
		if err == nil && o.env != nil {
			err = checkPreloaded(ctx, ctr)
		}
		if err == nil {
			rate := o.clockRate
			if rate == 0 {
				rate = 1
			}
			return &Master{Index: index, ctr: ctr, port: port, addr: addr, args: cmd, clockRate: rate, wait: ping}, nil
		}
		// Run can return a container together with an error: remove it.
		if ctr != nil {
			cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			if terr := testcontainers.TerminateContainer(ctr, testcontainers.StopContext(cctx), testcontainers.StopTimeout(0)); terr != nil {
				err = errors.Join(err, fmt.Errorf("terminate failed container: %w", terr))
			}
			cancel()
		}
		redistest.ReleasePort(port)
		if !isPortConflict(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("master %d: %w", index, err)
		}
		lastErr = err // someone else took the port meanwhile: pick another one
	}
	return nil, fmt.Errorf("master %d: no usable host port after %d attempts: %w", index, portAttempts, lastErr)
}

// checkPreloaded fails if the dynamic loader could not preload libclockrate
// (it only warns, on stderr, and runs redis-server with the real clock).
func checkPreloaded(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return fmt.Errorf("read logs to check LD_PRELOAD: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return fmt.Errorf("read logs to check LD_PRELOAD: %w", err)
	}
	logs := string(b)
	if i := strings.Index(logs, "LD_PRELOAD cannot be preloaded"); i >= 0 {
		line, _, _ := strings.Cut(logs[strings.LastIndexByte(logs[:i], '\n')+1:], "\n")
		return fmt.Errorf("%w: %s", ErrNoClockRate, strings.TrimSpace(line))
	}
	return nil
}

// Addr returns "127.0.0.1:PORT"; it is the same across Stop/Start/Kill/Restart.
func (m *Master) Addr() string { return m.addr }

// Port returns the fixed host port of the master on 127.0.0.1.
func (m *Master) Port() int { return m.port }

// Args returns the redis-server arguments the master runs with.
func (m *Master) Args() []string { return append([]string(nil), m.args...) }

// ClockRate returns the rate of the master's wall clock relative to real time
// (1 unless started with [WithClockRate]).
func (m *Master) ClockRate() float64 { return m.clockRate }

// ContainerID returns the Docker container ID.
func (m *Master) ContainerID() string { return m.ctr.GetContainerID() }

// Container returns the underlying testcontainers container.
func (m *Master) Container() *testcontainers.DockerContainer { return m.ctr }

// Running reports whether the master is running (not stopped, killed, paused
// or terminated) as far as the harness knows.
func (m *Master) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateRunning
}

// Paused reports whether the master is paused.
func (m *Master) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == statePaused
}

// Dial opens a redigo connection to Addr with short connect (2s) and
// read/write (3s) timeouts. The caller closes it.
func (m *Master) Dial(ctx context.Context) (redis.Conn, error) {
	return dial(ctx, m.addr)
}

func dial(ctx context.Context, addr string) (redis.Conn, error) {
	return redis.DialContext(ctx, "tcp", addr,
		redis.DialConnectTimeout(dialConnectTimeout),
		redis.DialReadTimeout(dialIOTimeout),
		redis.DialWriteTimeout(dialIOTimeout),
	)
}

// Do runs one command on a fresh connection, bounded by ctx and the Dial
// timeouts. A Redis error reply is returned as the error (redis.Error).
func (m *Master) Do(ctx context.Context, cmd string, args ...any) (any, error) {
	return do(ctx, m.addr, cmd, args...)
}

func do(ctx context.Context, addr, cmd string, args ...any) (any, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.DoContext(conn, ctx, cmd, args...)
}

// Stop stops the master cleanly: SIGTERM, then SIGKILL after 5s. With the
// default arguments nothing is persisted, so a later Start comes back empty.
// A paused master is unpaused first.
func (m *Master) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLive("stop"); err != nil {
		return err
	}
	if err := m.unpauseLocked(ctx); err != nil {
		return err
	}
	timeout := stopTimeout
	if err := m.ctr.Stop(ctx, &timeout); err != nil {
		return m.errorf("stop", err)
	}
	m.state = stateStopped
	return nil
}

// Kill sends SIGKILL and returns once the container has exited. Redis gets no
// chance to run any shutdown code (also when paused: it never runs again).
func (m *Master) Kill(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLive("kill"); err != nil {
		return err
	}
	if m.state == stateStopped {
		return nil
	}
	cli, err := docker()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ContainerKill(ctx, m.ContainerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return m.errorf("kill", err)
	}
	if m.state == statePaused {
		// The SIGKILL is pending in the frozen cgroup; thawing lets it land
		// (Redis cannot run user code first: SIGKILL is handled in the kernel).
		if _, err := cli.ContainerUnpause(ctx, m.ContainerID(), client.ContainerUnpauseOptions{}); err != nil && !isNotPaused(err) {
			return m.errorf("kill: unpause", err)
		}
	}
	if err := waitExited(ctx, cli, m.ContainerID()); err != nil {
		return m.errorf("kill: wait for exit", err)
	}
	m.state = stateStopped
	return nil
}

// Start starts a stopped or killed master again on the same Addr and returns
// once PING answers PONG. Starting a running master only checks PING; a
// paused master is unpaused.
func (m *Master) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLive("start"); err != nil {
		return err
	}
	if err := m.unpauseLocked(ctx); err != nil {
		return err
	}
	// Container.Start runs the readiness hook, that is our PING poll.
	if err := m.ctr.Start(ctx); err != nil {
		if isPortConflict(err) {
			err = fmt.Errorf("host port %d was taken by another process while the master was down: %w", m.port, err)
		}
		return m.errorf("start", err)
	}
	m.state = stateRunning
	return nil
}

// Restart is Stop followed by Start.
func (m *Master) Restart(ctx context.Context) error {
	if err := m.Stop(ctx); err != nil {
		return err
	}
	return m.Start(ctx)
}

// Pause freezes the Redis process (docker pause). Connections and commands to
// a paused master hang (TCP still connects) until Unpause.
func (m *Master) Pause(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLive("pause"); err != nil {
		return err
	}
	switch m.state {
	case statePaused:
		return nil
	case stateStopped:
		return m.errorf("pause", errors.New("master is stopped"))
	}
	cli, err := docker()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ContainerPause(ctx, m.ContainerID(), client.ContainerPauseOptions{}); err != nil {
		return m.errorf("pause", err)
	}
	m.state = statePaused
	return nil
}

// Unpause resumes a paused master and returns once PING answers PONG. It is a
// no-op for a master that is not paused.
func (m *Master) Unpause(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLive("unpause"); err != nil {
		return err
	}
	if m.state != statePaused {
		return nil
	}
	if err := m.unpauseLocked(ctx); err != nil {
		return err
	}
	if err := waitPing(ctx, m.addr, nil); err != nil {
		return m.errorf("unpause: wait for PING", err)
	}
	return nil
}

// unpauseLocked unpauses a paused master (m.mu held) and marks it running.
func (m *Master) unpauseLocked(ctx context.Context) error {
	if m.state != statePaused {
		return nil
	}
	cli, err := docker()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ContainerUnpause(ctx, m.ContainerID(), client.ContainerUnpauseOptions{}); err != nil && !isNotPaused(err) {
		return m.errorf("unpause", err)
	}
	m.state = stateRunning
	return nil
}

// Terminate stops and removes the container and frees its port. It is
// idempotent; [Cluster.Close] calls it for every master.
func (m *Master) Terminate() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateTerminated {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	if m.state == statePaused {
		if cli, err := docker(); err == nil {
			defer cli.Close()
			if _, err := cli.ContainerUnpause(ctx, m.ContainerID(), client.ContainerUnpauseOptions{}); err != nil && !isNotPaused(err) {
				errs = append(errs, err)
			}
		}
	}
	// Data does not matter any more: no grace period.
	if err := testcontainers.TerminateContainer(m.ctr, testcontainers.StopContext(ctx), testcontainers.StopTimeout(0)); err != nil {
		errs = append(errs, err)
	}
	m.state = stateTerminated
	redistest.ReleasePort(m.port)
	if err := errors.Join(errs...); err != nil {
		return m.errorf("terminate", err)
	}
	return nil
}

// Logs returns the container's output (stdout and stderr), for diagnostics.
func (m *Master) Logs(ctx context.Context) (string, error) {
	rc, err := m.ctr.Logs(ctx)
	if err != nil {
		return "", m.errorf("logs", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func (m *Master) checkLive(op string) error {
	if m.state == stateTerminated {
		return m.errorf(op, errors.New("master is terminated"))
	}
	return nil
}

func (m *Master) errorf(op string, err error) error {
	return fmt.Errorf("integration: master %d (%s): %s: %w", m.Index, m.addr, op, err)
}

func isNotPaused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is not paused")
}

// waitExited blocks until the container is not running.
func waitExited(ctx context.Context, cli client.APIClient, id string) error {
	res := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-res.Result:
		return nil
	case err := <-res.Error:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---------------------------------------------------------------------------
// Readiness

// waitPing polls PING on addr (from the host, through the published port)
// until it answers PONG. exited, if not nil, is consulted now and then and
// ends the wait early when the container is no longer running.
func waitPing(ctx context.Context, addr string, exited func(context.Context) error) error {
	const interval = 20 * time.Millisecond
	var lastErr error
	for i := 0; ; i++ {
		attemptCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		reply, err := redis.String(do(attemptCtx, addr, "PING"))
		cancel()
		if err == nil && reply == "PONG" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("PING answered %q", reply)
		}
		lastErr = err
		if exited != nil && i%10 == 9 {
			if err := exited(ctx); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last PING error: %v)", ctx.Err(), lastErr)
		case <-time.After(interval):
		}
	}
}

// pingStrategy is a testcontainers wait strategy that polls PING from the host
// on 127.0.0.1:port. It runs after the first start and after every restart
// (Container.Start runs the readiness hook). Log-based waiting cannot be used
// after a restart (the old "Ready" line matches at once), and the port check
// alone passes as soon as docker-proxy listens, before Redis does.
type pingStrategy struct {
	addr    string
	timeout time.Duration
}

var _ wait.Strategy = (*pingStrategy)(nil)

func (s *pingStrategy) String() string { return "PING on " + s.addr }

func (s *pingStrategy) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return waitPing(ctx, s.addr, func(ctx context.Context) error {
		st, err := target.State(ctx)
		if err != nil {
			return nil // transient; keep polling
		}
		if !st.Running {
			msg := fmt.Sprintf("container is %s (exit code %d) before answering PING", st.Status, st.ExitCode)
			if rc, err := target.Logs(ctx); err == nil {
				b, _ := io.ReadAll(io.LimitReader(rc, 4096))
				_ = rc.Close()
				msg += "; logs:\n" + string(b)
			}
			return errors.New(msg)
		}
		return nil
	})
}
