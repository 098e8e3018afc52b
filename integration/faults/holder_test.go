package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leverege/lock/internal/safety"
	"github.com/leverege/lock/redlock"
)

// holderEnv holds a holderSpec as JSON when this test binary runs as a
// holder process: it takes one lock, says "acquired <value> <before>
// <token>", waits for a line on stdin, then writes to the fenced resource
// (when the spec names one), tries Extend and Unlock, and says what each
// returned.
const holderEnv = "LOCK_FAULTS_HOLDER"

type holderSpec struct {
	Addrs   []string      `json:"addrs"`
	Key     string        `json:"key"`
	TTL     time.Duration `json:"ttl"`
	Fencing bool          `json:"fencing"`
	// Resource, when set, is the key of a fenced resource on the first
	// master that the holder writes to once told to go on (fencedWrite).
	Resource string `json:"resource"`
}

func holderMain(raw string) int {
	var spec holderSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "holder: bad spec:", err)
		return 2
	}
	c, err := redlock.New(newPools(spec.Addrs), redlock.WithRetryCount(0), redlock.WithNodeTimeout(250*time.Millisecond),
		redlock.WithFencing(spec.Fencing))
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	defer c.Destroy()
	ctx := context.Background()
	before := safety.Mono()
	lk, err := c.Lock(ctx, spec.Key, spec.TTL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	fmt.Printf("acquired %s %d %d\n", lk.Value(), before, lk.Token())
	bufio.NewReader(os.Stdin).ReadString('\n') // until told to go on
	if spec.Resource != "" {
		accepted, err := fencedWrite(ctx, spec.Addrs[0], spec.Resource, lk.Token(), "paused holder")
		fmt.Printf("write: accepted=%v err=%v\n", accepted, err)
	} else {
		fmt.Println("write: none")
	}
	_, err = lk.Extend(ctx, spec.TTL)
	fmt.Printf("extend: %v\n", err)
	fmt.Printf("unlock: %v\n", lk.Unlock(ctx))
	return 0
}

// holder is a separate process holding one lock.
type holder struct {
	cmd   *exec.Cmd
	in    *os.File
	out   *bufio.Scanner
	Value string
	// Before is the holder's safety.Mono() just before it called Lock.
	Before int64
	Token  uint64
	// Wrote is what the holder's write to the fenced resource returned.
	Wrote string
}

// startHolder starts a holder process and waits until it holds the lock.
func startHolder(t *testing.T, spec holderSpec) *holder {
	t.Helper()
	raw, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdin = stdin
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	stdin.Close()
	h := &holder{cmd: cmd, in: w, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		w.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := h.line(t)
	var err2 error
	_, err2 = fmt.Sscanf(line, "acquired %s %d %d", &h.Value, &h.Before, &h.Token)
	require.NoError(t, err2, "holder said %q", line)
	return h
}

func (h *holder) line(t *testing.T) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		if h.out.Scan() {
			got <- h.out.Text()
		} else {
			got <- ""
		}
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("the holder process said nothing")
		return ""
	}
}

// goOn tells the holder to try Extend and Unlock; it returns what they said.
func (h *holder) goOn(t *testing.T) (extend, unlock string) {
	t.Helper()
	_, err := h.in.WriteString("go\n")
	require.NoError(t, err)
	h.Wrote = h.line(t)
	return h.line(t), h.line(t)
}
