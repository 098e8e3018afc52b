package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/redlock"
)

// loadSpec is a contention workload: Clients goroutines, each with a client
// of its own (its own pools, as a separate process would have), each making
// PerClient acquisitions over Keys keys. Under the lock a holder updates a
// counter file per key by read, pause, write, so that two holders at once
// lose an update; then it holds for Hold (every Overrun-th time for 1.5×TTL,
// past its validity) and unlocks. Every window goes to the checker.
type loadSpec struct {
	Addrs       []string      `json:"addrs"`
	Keys        int           `json:"keys"`
	Clients     int           `json:"clients"`
	PerClient   int           `json:"perClient"`
	TTL         time.Duration `json:"ttl"`
	Hold        time.Duration `json:"hold"`
	Overrun     int           `json:"overrun"`
	RetryDelay  time.Duration `json:"retryDelay"`
	NodeTimeout time.Duration `json:"nodeTimeout"`
	CounterDir  string        `json:"counterDir"`
	Holder      string        `json:"holder"`
	Variant     variant       `json:"variant"`
	Deadline    time.Duration `json:"deadline"`
}

// variant breaks the algorithm on purpose in one of the ways other
// libraries have (redlock.Broken, which exists under the build tag
// lockbroken only): the safety suite shows its checker catching each.
type variant struct {
	HalfQuorum bool // quorum N/2 (at least 1) instead of N/2+1
	NoDrift    bool // no drift allowance: validity is start + ttl
	PlainDel   bool // release with a plain DEL instead of compare-and-delete
	LateStart  bool // validity measured from after the replies, not before the requests
	Silent     bool // Unlock does not announce releases
}

type loadResult struct {
	Windows  []safety.Window `json:"windows"`
	Acquired map[string]int  `json:"acquired"` // per key
	Errors   []string        `json:"errors"`   // Lock failures (the spec retries until Deadline)
	Latency  []time.Duration `json:"latency"`  // of each successful Lock
	Lost     int             `json:"lost"`     // Unlocks that found the lock gone (overruns)
}

func (s loadSpec) options() []redlock.Option {
	opts := []redlock.Option{
		redlock.WithRetryCount(-1),
		redlock.WithRetryDelay(s.RetryDelay),
		redlock.WithRetryJitter(s.RetryDelay),
		redlock.WithNodeTimeout(s.NodeTimeout),
	}
	if s.Variant != (variant{}) {
		opts = append(opts, s.Variant.option())
	}
	return opts
}

func newPools(addrs []string) []*redis.Pool {
	ps := make([]*redis.Pool, len(addrs))
	for i, a := range addrs {
		ps[i] = &redis.Pool{MaxIdle: 8, DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", a)
		}}
	}
	return ps
}

// runLoad runs spec in this process.
func runLoad(ctx context.Context, spec loadSpec) loadResult {
	var (
		rec safety.Recorder
		mu  sync.Mutex
		res = loadResult{Acquired: map[string]int{}}
		wg  sync.WaitGroup
	)
	for client := range spec.Clients {
		c, err := redlock.New(newPools(spec.Addrs), spec.options()...)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		holder := fmt.Sprintf("%s/%d", spec.Holder, client)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Destroy()
			for i := range spec.PerClient {
				key := fmt.Sprint("key", (client+i)%spec.Keys)
				began := time.Now()
				lk, err := c.Lock(ctx, key, spec.TTL)
				if err != nil {
					mu.Lock()
					res.Errors = append(res.Errors, err.Error())
					mu.Unlock()
					return // only the deadline ends retrying; stop
				}
				start := safety.Mono()
				latency := time.Since(began)
				bump(spec.CounterDir, key)
				hold := spec.Hold
				if spec.Overrun > 0 && i%spec.Overrun == spec.Overrun-1 {
					hold = spec.TTL * 3 / 2
				}
				time.Sleep(hold)
				released := safety.Mono()
				rec.Held(key, holder, start, released, lk.Expiration())
				err = lk.Unlock(context.Background())
				mu.Lock()
				res.Acquired[key]++
				res.Latency = append(res.Latency, latency)
				if errors.Is(err, lockerr.ErrNotHeld) {
					res.Lost++
				} else if err != nil {
					res.Errors = append(res.Errors, err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Windows = rec.Windows()
	return res
}

// bump adds one to key's counter file by read, pause, write: not atomic, so
// holders that overlap lose updates.
func bump(dir, key string) {
	path := filepath.Join(dir, key)
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(string(b))
	time.Sleep(50 * time.Microsecond)
	_ = os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o644)
}

// counters reads every key's counter.
func counters(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		n, err := strconv.Atoi(string(b))
		require.NoError(t, err, "counter %s holds %q", e.Name(), b)
		out[e.Name()] = n
	}
	return out
}

// startWorker runs spec in a separate process (this test binary, in worker
// mode). wait returns its result.
func startWorker(t *testing.T, spec loadSpec) (cmd *exec.Cmd, wait func() loadResult) {
	t.Helper()
	raw, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+string(raw))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, func() loadResult {
		t.Helper()
		err := cmd.Wait()
		require.NoError(t, err, "worker failed: %s", errOut.String())
		var res loadResult
		require.NoError(t, json.Unmarshal(out.Bytes(), &res), "worker said: %s %s", out.String(), errOut.String())
		return res
	}
}

// merge adds b's figures to a's.
func merge(a, b loadResult) loadResult {
	a.Windows = append(a.Windows, b.Windows...)
	for k, n := range b.Acquired {
		a.Acquired[k] += n
	}
	a.Errors = append(a.Errors, b.Errors...)
	a.Latency = append(a.Latency, b.Latency...)
	a.Lost += b.Lost
	return a
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// percentile of ds (sorted in place), p in [0, 1].
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// leftKeys lists the keys left on the masters, but for the restart
// protection's marker.
func leftKeys(t *testing.T, addrs []string) []string {
	t.Helper()
	var out []string
	for i, a := range addrs {
		c, err := redis.DialContext(t.Context(), "tcp", a)
		require.NoError(t, err)
		ks, err := redis.Strings(c.Do("KEYS", "*"))
		c.Close()
		require.NoError(t, err)
		for _, k := range ks {
			if k != redlock.MarkerKey {
				out = append(out, fmt.Sprintf("%d:%s", i, k))
			}
		}
	}
	return out
}
