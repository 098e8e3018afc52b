// Package faults is the fault-injection and safety suite: scenarios on real
// Redis masters (crashed, hung, cut off, slowed, restarted) with contending
// clients in this process and in separate processes, every holder's
// validity window checked for overlaps by internal/safety.
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/leverege/lock/integration"
)

// workerEnv holds a loadSpec as JSON when this test binary runs as a worker
// process for another test: it then runs the load, prints its result as JSON
// and exits, without running any test.
const workerEnv = "LOCK_FAULTS_WORKER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(workerMain(spec))
	}
	if spec := os.Getenv(holderEnv); spec != "" {
		os.Exit(holderMain(spec))
	}
	if !brokenBuilt {
		fmt.Fprintln(os.Stderr, "the fault suite shows broken variants caught: run it with -tags lockbroken (make test does)")
		os.Exit(2)
	}
	os.Exit(shared.Main(m))
}

func workerMain(raw string) int {
	var spec loadSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "worker: bad spec:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.Deadline)
	defer cancel()
	res := runLoad(ctx, spec)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	return 0
}

// The scenarios share five masters, started on first use; a scenario that
// needs N uses the first N, after flushing them and healing every fault.
var shared = integration.Shared{N: 5}

func masters(t testing.TB, n int) []*integration.Master {
	t.Helper()
	ms := shared.Cluster(t).Masters[:n]
	for _, m := range ms {
		if m.Paused() {
			if err := m.Unpause(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if !m.Running() {
			if err := m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Do(t.Context(), "FLUSHALL"); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func addrs(ms []*integration.Master) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Addr()
	}
	return out
}

// soaking is set by LOCK_SOAK=1: the long variants of the scenarios.
var soaking = os.Getenv("LOCK_SOAK") != ""
