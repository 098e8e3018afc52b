package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The contended loop: every contender repeats Lock, hold, Unlock, pause on
// one key.
const (
	hold  = 1 * time.Millisecond
	pause = 2 * time.Millisecond
	// lockTimeout bounds each Lock call; a Lock that runs out counts as a
	// failure.
	lockTimeout = 5 * time.Second
	// contendCap bounds a benchmark's window, whatever b.N.
	contendCap = 3 * time.Second
	// workerCap bounds the worker process's window, should it never be told
	// to stop.
	workerCap = 30 * time.Second
	// maxCycles bounds every contender's loop in count as well.
	maxCycles = 1 << 20
)

// workerEnv, when set, turns the test binary into a contending worker (see
// runWorker); its value is the JSON of a workerConfig.
const workerEnv = "LOCK_BENCH_WORKER"

type workerConfig struct {
	Impl       string        `json:"impl"`
	Addrs      []string      `json:"addrs"`
	Key        string        `json:"key"`
	TTL        time.Duration `json:"ttl"`
	Forever    bool          `json:"forever"`
	Delay      time.Duration `json:"delay"`
	Goroutines int           `json:"goroutines"`
}

// tally is what a set of contenders did in one window.
type tally struct {
	Acquired     int64   `json:"acquired"`
	Failed       int64   `json:"failed"`        // Lock calls that returned an error before the window ended
	UnlockFailed int64   `json:"unlock_failed"` // Unlock calls that returned an error
	Overlaps     int64   `json:"overlaps"`      // acquisitions while another contender of this process held the key
	Waits        []int64 `json:"waits_ns"`      // per acquisition: from calling Lock to its success
	FirstErr     string  `json:"first_err,omitempty"`
}

func (t *tally) add(o tally) {
	t.Acquired += o.Acquired
	t.Failed += o.Failed
	t.UnlockFailed += o.UnlockFailed
	t.Overlaps += o.Overlaps
	t.Waits = append(t.Waits, o.Waits...)
	if t.FirstErr == "" {
		t.FirstErr = o.FirstErr
	}
}

// contend runs g contenders on key until ctx ends. When limit > 0, stop is
// called once limit acquisitions have been made (in-flight contenders may
// add a few more before they see ctx end). A Lock cut short by the end of
// ctx is neither an acquisition nor a failure.
func contend(ctx context.Context, l locker, key string, ttl time.Duration, g int, limit int64, stop func()) tally {
	var (
		mu      sync.Mutex
		total   tally
		count   atomic.Int64
		holders atomic.Int32
		wg      sync.WaitGroup
	)
	for range g {
		wg.Go(func() {
			var t tally
			for range maxCycles {
				if ctx.Err() != nil {
					break
				}
				lctx, cancel := context.WithTimeout(ctx, lockTimeout)
				start := time.Now()
				h, err := l.Lock(lctx, key, ttl)
				wait := time.Since(start)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						t.Failed++
						if t.FirstErr == "" {
							t.FirstErr = err.Error()
						}
					}
					sleep(ctx, pause)
					continue
				}
				t.Acquired++
				t.Waits = append(t.Waits, int64(wait))
				if holders.Add(1) != 1 {
					t.Overlaps++
				}
				time.Sleep(hold)
				holders.Add(-1)
				// Not ctx: the lock is released even after the window.
				if err := h.Unlock(context.Background()); err != nil {
					t.UnlockFailed++
					if t.FirstErr == "" {
						t.FirstErr = "unlock: " + err.Error()
					}
				}
				if limit > 0 && count.Add(1) >= limit {
					stop()
				}
				sleep(ctx, pause)
			}
			mu.Lock()
			total.add(t)
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// runWorker is the worker process: it builds the locker the config names,
// warms its connections, prints "ready", waits for a "start" line on stdin,
// contends until stdin is closed (or workerCap), and prints its tally as
// one JSON line. It returns the exit code.
func runWorker(cfgJSON string) int {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker: bad config:", err)
		return 2
	}
	l, closeL, err := newLocker(cfg.Impl, cfg.Addrs, retry{forever: cfg.Forever, delay: cfg.Delay})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	defer closeL()
	if err := warm(l, cfg.Goroutines, cfg.TTL); err != nil {
		fmt.Fprintln(os.Stderr, "worker: warm-up:", err)
		return 2
	}
	fmt.Println("ready")

	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "start" {
		fmt.Fprintln(os.Stderr, "worker: no start line")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), workerCap)
	defer cancel()
	go func() {
		// Stop at EOF (or anything else) on stdin.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	t := contend(ctx, l, cfg.Key, cfg.TTL, cfg.Goroutines, 0, cancel)
	if err := json.NewEncoder(os.Stdout).Encode(t); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	return 0
}

// worker is a running worker process, seen from the benchmark.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	out    *bufio.Reader
	done   chan struct{} // closed when the process has exited
	once   sync.Once
}

// startWorker re-executes the test binary as a worker and waits (at most
// 10 s) until it is ready.
func startWorker(cfg workerConfig) (*worker, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), workerEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Not StdoutPipe: cmd.Wait, which runs as soon as the worker has
	// exited, would close it under a read of the last line.
	stdout, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = wr
	err = cmd.Start()
	wr.Close()
	if err != nil {
		stdout.Close()
		return nil, err
	}
	w := &worker{cmd: cmd, stdin: stdin, stdout: stdout, out: bufio.NewReader(stdout), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(w.done)
	}()
	line, err := w.readLine(10 * time.Second)
	if err != nil || line != "ready" {
		w.kill()
		return nil, fmt.Errorf("worker not ready: %q %v", line, err)
	}
	return w, nil
}

// readLine reads one line of the worker's stdout within d.
func (w *worker) readLine(d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := w.out.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.line, r.err
		}
		return r.line[:len(r.line)-1], nil
	case <-time.After(d):
		w.kill()
		return "", errors.New("worker: no answer in time")
	}
}

// start tells the worker to begin contending.
func (w *worker) start() error {
	_, err := io.WriteString(w.stdin, "start\n")
	return err
}

// stop tells the worker to stop (closes its stdin); safe to call often and
// from any goroutine.
func (w *worker) stop() { w.once.Do(func() { w.stdin.Close() }) }

// result stops the worker and reads its tally (within 10 s).
func (w *worker) result() (tally, error) {
	w.stop()
	var t tally
	line, err := w.readLine(10 * time.Second)
	if err != nil {
		return t, err
	}
	err = json.Unmarshal([]byte(line), &t)
	return t, err
}

// kill ends the worker process, if it has not exited, and waits for it.
func (w *worker) kill() {
	w.stop()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	w.stdout.Close()
}

// warm runs g lock-unlock cycles at once on distinct keys, so that every
// pool has the connections the case needs (and the scripts are cached on
// the masters) before anything is measured.
func warm(l locker, g int, ttl time.Duration) error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, g)
	)
	prefix := uniqueKey("warm") + ":"
	for i := range g {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
			defer cancel()
			h, err := l.Lock(ctx, fmt.Sprint(prefix, i), ttl)
			if err == nil {
				if h, err = h.Extend(ctx, ttl); err == nil {
					err = h.Unlock(ctx)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// percentile returns the p-th percentile (0 < p <= 100, nearest rank) of
// xs, sorting xs in place; 0 when xs is empty.
func percentile(xs []int64, p float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(float64(len(xs))*p/100)) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
