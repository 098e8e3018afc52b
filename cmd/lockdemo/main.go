// Command lockdemo runs the library's main job: workers that contend for one
// key and update a shared counter only while they hold the lock. The backend
// comes from LOCK_CONFIG (the in-memory lock when it is unset), so the same
// command checks a Redis deployment:
//
//	go run ./cmd/lockdemo
//	LOCK_CONFIG='{"type":"redis","connection":{"host":"127.0.0.1","port":6379}}' go run ./cmd/lockdemo
//
// It prints what it did and exits non-zero if two holders ever overlapped or
// an update was lost.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lock "github.com/leverege/lock"
)

func main() {
	workers := flag.Int("workers", 8, "goroutines contending for the key")
	rounds := flag.Int("rounds", 200, "acquisitions per worker")
	ttl := flag.Duration("ttl", time.Second, "time to live of each lock")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*workers, *rounds, *ttl, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "lockdemo:", err)
		os.Exit(1)
	}
}

func run(workers, rounds int, ttl, timeout time.Duration) error {
	if workers < 1 || rounds < 1 {
		return fmt.Errorf("-workers and -rounds must be at least 1")
	}
	locker, err := lock.FromEnv("lockdemo")
	if err != nil {
		return err
	}
	defer locker.Destroy()
	backend := "in-memory"
	if os.Getenv(lock.EnvVar) != "" {
		backend = "from " + lock.EnvVar
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var (
		counter  atomic.Int64 // read and written apart: overlap loses updates
		inside   atomic.Bool
		overlaps atomic.Int64
		retried  atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < rounds; {
				l, err := locker.LockNs(ctx, "counter", ttl)
				if err != nil {
					if ctx.Err() == nil && errors.Is(err, lock.ErrNotAcquired) {
						// The configured retries ran out: pause, then go again.
						retried.Add(1)
						time.Sleep(time.Millisecond)
						continue
					}
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				if !inside.CompareAndSwap(false, true) {
					overlaps.Add(1)
				}
				c := counter.Load()
				time.Sleep(20 * time.Microsecond) // widen the window an overlap would hit
				counter.Store(c + 1)
				inside.Store(false)
				if err := l.Unlock(ctx); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := int64(workers * rounds)
	fmt.Printf("backend:       %s\n", backend)
	fmt.Printf("acquisitions:  %d by %d workers in %v (%.0f/s)\n", counter.Load(), workers, elapsed.Round(time.Millisecond), float64(counter.Load())/elapsed.Seconds())
	fmt.Printf("gave up:       %d times (retries ran out; paused 1ms, tried again)\n", retried.Load())
	fmt.Printf("overlaps:      %d\n", overlaps.Load())
	fmt.Printf("lost updates:  %d\n", want-counter.Load())
	switch {
	case firstErr != nil:
		return firstErr
	case overlaps.Load() != 0 || counter.Load() != want:
		return fmt.Errorf("mutual exclusion violated")
	}
	return nil
}
