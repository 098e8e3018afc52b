// Command lock is the operator's tool for the lock library: it runs a
// command while holding a lock, reports on the Redis masters, and runs a
// contention benchmark that checks mutual exclusion.
//
//	lock run [flags] KEY -- COMMAND [ARGS...]
//	lock status [flags]
//	lock bench [flags]
//
// The backend comes from --servers, --config FILE or $LOCK_CONFIG (the
// library's JSON); with none of them it is the in-memory lock. See
// docs/cli.md for every flag and exit status.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

// Exit statuses. Whenever the status is the tool's own (not the command's,
// in `lock run`), the tool has printed one line starting "lock: " on stderr.
const (
	exitOK          = 0
	exitCheckFailed = 1   // bench: a mutual-exclusion violation or a lost update
	exitUsage       = 64  // EX_USAGE: bad flags or arguments
	exitUnavailable = 69  // EX_UNAVAILABLE: too few masters answer
	exitSoftware    = 70  // EX_SOFTWARE: an unexpected error
	exitNotAcquired = 75  // EX_TEMPFAIL: the lock is held elsewhere; try later
	exitLost        = 76  // run: the lock was lost while the command ran; it was stopped
	exitConfig      = 78  // EX_CONFIG: the configuration is bad
	exitCannotExec  = 126 // run: the command was found but could not be started
	exitNotFound    = 127 // run: the command was not found
)

const statusTable = `Exit statuses:
  0        success (run: the command exited 0)
  1        bench: a mutual-exclusion violation or a lost update
  64       bad flags or arguments
  69       too few masters answer (status: no quorum; run: not acquired because
           masters are down; bench: nothing could be acquired)
  70       an unexpected error
  75       run: not acquired, the key is held elsewhere (--no-wait, --wait or the
           retries ran out)
  76       run: the lock was lost while the command ran; the command was stopped
  78       bad configuration (LOCK_CONFIG, --config), or masters that refuse it
           (credentials, TLS, the same server listed twice)
  126/127  run: the command could not be started / was not found
  128+N    run: interrupted by signal N while waiting for the lock
  other    run: the command's own status (128+N when it died of signal N)
`

const mainUsage = `lock runs a command while holding a distributed lock, reports on the lock's
Redis masters, and benchmarks the lock.

Usage:
  lock run [flags] KEY -- COMMAND [ARGS...]   run COMMAND while holding KEY
  lock status [flags]                         check the configured Redis masters
  lock bench [flags]                          contention workload with a safety check
  lock help [COMMAND]                         show a command's flags and examples
  lock version                                the build: module version, revision, Go

The backend is chosen by --servers host:port,..., --config FILE or the
LOCK_CONFIG environment variable (the library's JSON), in that order; with
none of them it is the in-memory lock, which excludes only within one process.

Examples:
  lock run --no-wait nightly-report -- ./report.sh
  lock status --servers 10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
  lock bench --duration 10s

` + statusTable + `
Run 'lock COMMAND --help' for a command's flags. Documentation: docs/cli.md.
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain runs the tool and returns its exit status. Every failure is
// printed as one line on stderr.
func realMain(args []string, stdin, stdout, stderr *os.File) int {
	err := dispatch(args, stdin, stdout, stderr)
	if err == nil {
		return exitOK
	}
	var ex *exitError
	if !errors.As(err, &ex) {
		ex = &exitError{code: exitSoftware, err: err}
	}
	if ex.err != nil {
		fmt.Fprintln(stderr, "lock: "+oneLine(ex.err.Error()))
	}
	return ex.code
}

func dispatch(args []string, stdin, stdout, stderr *os.File) error {
	if len(args) == 0 {
		return usageErr("missing command: want run, status or bench (see lock --help)")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return cmdRun(rest, stdin, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout)
	case "bench":
		return cmdBench(rest, stdout)
	case "version", "-version", "--version":
		if len(rest) > 0 {
			return usageErr("version: unexpected argument %q", rest[0])
		}
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "-help", "--help":
		if cmd == "help" && len(rest) > 0 {
			switch rest[0] {
			case "run", "status", "bench":
				return dispatch([]string{rest[0], "--help"}, stdin, stdout, stderr)
			}
			return usageErr("help: unknown command %q: want run, status or bench", rest[0])
		}
		fmt.Fprint(stdout, mainUsage)
		return nil
	default:
		if strings.HasPrefix(cmd, "-") {
			return usageErr("flags go after the command: lock run|status|bench [flags] (got %q first)", cmd)
		}
		return usageErr("unknown command %q: want run, status or bench (see lock --help)", cmd)
	}
}

// exitError carries the exit status of a failure; err, when not nil, is
// printed on stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exitErr(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func usageErr(format string, args ...any) error {
	return exitErr(exitUsage, format, args...)
}

// oneLine joins the lines of a message (errors.Join puts each error on its
// own line) so that every failure is one line on stderr.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

// ---------------------------------------------------------------------------
// Flags

// newFlagSet returns a flag set that reports nothing itself: parse turns
// its errors into one line and --help into the usage on stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// errHelp means the usage was printed on request: exit 0.
var errHelp = &exitError{code: exitOK}

// parse parses args, printing usage (head, the flags, then tail) on
// --help.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer, head, tail string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, head)
		fmt.Fprintln(stdout, "\nFlags:")
		printFlags(stdout, fs)
		fmt.Fprint(stdout, tail)
		return errHelp
	case err != nil:
		return usageErr("%s: %v (see lock %s --help)", fs.Name(), err, fs.Name())
	}
	return nil
}

// printFlags lists the flags GNU-style, "--name VALUE", with their defaults.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if kind != "" {
			head += " " + strings.ToUpper(kind)
		}
		fmt.Fprintln(w, head)
		fmt.Fprint(w, "        "+usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// ---------------------------------------------------------------------------
// Configuration

// backendFlags are the flags every command takes to choose the backend.
type backendFlags struct {
	configFile string
	servers    string
	namespace  string
}

func (b *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.configFile, "config", "", "read the lock configuration from `FILE` (the library's JSON, as in LOCK_CONFIG)")
	fs.StringVar(&b.servers, "servers", "", "use the Redis masters `host:port,...` with the default lock options (overrides LOCK_CONFIG)")
	fs.StringVar(&b.namespace, "namespace", "", "put `NS` before keys (\"NS:KEY\"); default: the configuration's namespace")
}

// backend is a loaded configuration and where it came from.
type backend struct {
	cfg    *config.Config
	source string       // "--servers", "--config FILE", "LOCK_CONFIG" or "" (the default)
	opts   lock.Options // what Create gets: the configuration, and --namespace
}

// load reads the configuration: --servers, else --config, else
// LOCK_CONFIG, else the in-memory default.
func (b *backendFlags) load() (*backend, error) {
	var (
		cfg    *config.Config
		source string
		err    error
	)
	switch {
	case b.servers != "" && b.configFile != "":
		return nil, usageErr("give either --servers or --config, not both")
	case b.servers != "":
		source = "--servers"
		cfg, err = serversConfig(b.servers)
		if err != nil {
			return nil, usageErr("--servers: %v", err)
		}
	case b.configFile != "":
		source = "--config " + b.configFile
		data, rerr := os.ReadFile(b.configFile)
		if rerr != nil {
			return nil, exitErr(exitConfig, "--config: %v", rerr)
		}
		if cfg, err = config.Parse(data); err != nil {
			return nil, exitErr(exitConfig, "%s: %v", b.configFile, err)
		}
	case os.Getenv(lock.EnvVar) != "":
		source = lock.EnvVar
		if cfg, err = config.Parse([]byte(os.Getenv(lock.EnvVar))); err != nil {
			return nil, exitErr(exitConfig, "%s: %v", lock.EnvVar, err)
		}
	default:
		cfg = config.Default()
	}
	return &backend{cfg: cfg, source: source, opts: lock.Options{Namespace: b.namespace, LockConfig: cfg}}, nil
}

// create builds the Locker; a configuration the library refuses is a
// configuration error.
func (b *backend) create() (lock.Locker, error) {
	l, err := lock.Create(b.opts)
	if err != nil {
		return nil, exitErr(exitConfig, "%v", err)
	}
	return l, nil
}

// key is KEY as the lock stores it: "<namespace>:KEY" with a namespace.
func (b *backend) key(k string) string { return b.opts.NamespacedKey(k) }

// describe names the backend for humans.
func (b *backend) describe() string {
	if b.cfg.Type != config.Redis {
		if b.source == "" {
			return "in-memory (nothing configured)"
		}
		return "in-memory (" + b.source + ")"
	}
	addrs := make([]string, len(b.cfg.Connections))
	for i, c := range b.cfg.Connections {
		addrs[i] = c.Addr()
	}
	return fmt.Sprintf("redis, %d master(s) %s (%s)", len(addrs), strings.Join(addrs, ","), b.source)
}

// serversConfig is a Redis configuration with the masters s lists
// ("host:port,host:port") and the default lock options.
func serversConfig(s string) (*config.Config, error) {
	cfg := &config.Config{Type: config.Redis, LockOptions: config.DefaultLockOptions()}
	for i, addr := range strings.Split(s, ",") {
		addr = strings.TrimSpace(addr)
		if strings.ContainsAny(addr, "@/") {
			// A URL or credentials: the item may hold a password, so it is
			// not quoted back.
			return nil, fmt.Errorf("item %d is not host:port (it looks like a URL or has credentials, which --servers does not take: put them in --config or LOCK_CONFIG)", i+1)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: want host:port", addr)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: %q is not a TCP port (1-65535)", addr, port)
		}
		if host == "" {
			return nil, fmt.Errorf("%q: no host", addr)
		}
		cfg.Connections = append(cfg.Connections, config.Connection{Host: host, Port: n})
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// version describes the build from its build info: the module's version
// (the tag for `go install ...@v0.1.0`; in a clone, a pseudo-version made
// from the revision, "+dirty" when modified, or "(devel)" when built
// without VCS stamping), the VCS revision and whether the tree had
// uncommitted changes, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "lock: no build information (built without module support)"
	}
	rev, modified := "unknown", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("lock %s, revision %s%s, %s", v, rev, modified, bi.GoVersion)
}
