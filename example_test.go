package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/config"
)

// The usual start: let LOCK_CONFIG choose the backend (in-memory when it is
// unset), with a namespace for LockNs.
func Example() {
	os.Unsetenv("LOCK_CONFIG") // for this example: the in-memory default
	locker, err := lock.FromEnv("myApp")
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()

	ctx := context.Background()
	l, err := locker.Lock(ctx, "myKey", time.Second) // locks "myKey" as given
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked", l.Key())
	// ... do work ...
	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}

	l, err = locker.LockNs(ctx, "myKey", time.Second) // locks "myApp:myKey"
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked", l.Key())
	_ = l.Unlock(ctx)
	// Output:
	// locked myKey
	// locked myApp:myKey
}

// Extend returns the lock with its new validity; keep using the returned
// value.
func ExampleLock_extend() {
	locker, _ := lock.Create(lock.Options{})
	defer locker.Destroy()
	ctx := context.Background()

	l, err := locker.Lock(ctx, "myKey", time.Second)
	if err != nil {
		log.Fatal(err)
	}
	// ... do work ...
	l, err = l.Extend(ctx, time.Second)
	if err != nil {
		log.Fatal(err) // errors.Is(err, lock.ErrNotHeld): the lock was lost
	}
	// ... do more work ...
	fmt.Println(l.Unlock(ctx))
	// Output: <nil>
}

// The in-memory lock works within one process. Retry and Delay have the
// original's meaning: retries after the first attempt (negative: until the
// context ends) and the wait between attempts.
func ExampleCreate_inMemory() {
	locker, err := lock.Create(lock.Options{
		Namespace:  "myApp",
		LockConfig: &config.Config{Type: config.InMemory, Retry: 0, Delay: 100 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()
	ctx := context.Background()

	first, _ := locker.LockNs(ctx, "job", time.Minute)
	_, err = locker.LockNs(ctx, "job", time.Minute)
	fmt.Println(errors.Is(err, lock.ErrNotAcquired))
	var detail *lock.Error
	if errors.As(err, &detail) {
		fmt.Println(detail.Attempts, "attempt,", detail.Nodes[0].Err)
	}
	_ = first.Unlock(ctx)
	// Output:
	// true
	// 1 attempt, held by another owner
}

// A Redis lock over three independent masters; the lock options are the
// original's (Redlock's). Compiled, not run: it needs the masters.
func ExampleCreate_redis() {
	lo := config.DefaultLockOptions()
	lo.RetryCount = 0
	locker, err := lock.Create(lock.Options{
		Namespace: "myApp",
		LockConfig: &config.Config{
			Type: config.Redis,
			Connections: []config.Connection{
				{Host: "10.0.0.1", Port: 6379},
				{Host: "10.0.0.2", Port: 6379},
				{Host: "10.0.0.3", Port: 6379},
			},
			LockOptions: lo,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()

	l, err := locker.LockNs(context.Background(), "report", 10*time.Second)
	if errors.Is(err, lock.ErrNotAcquired) {
		return // someone else is making the report
	}
	defer l.Unlock(context.Background())
	// ... make the report, well within l.Expiration() ...
}

// LOCK_CONFIG holds the same JSON as the original's lockConfig, or the whole
// create options with the namespace.
func ExampleFromEnv() {
	os.Setenv("LOCK_CONFIG", `{"namespace":"test","lockConfig":{"type":"inMemory","retry":0,"delay":100}}`)
	defer os.Unsetenv("LOCK_CONFIG")

	locker, err := lock.FromEnv("")
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()
	l, _ := locker.LockNs(context.Background(), "myKey", time.Second)
	fmt.Println(l.Key())
	// Output: test:myKey
}

// A cancelled or expired context ends the wait; the error matches both
// ErrNotAcquired and the context's error.
func ExampleLocker_cancel() {
	cfg, _ := config.Parse([]byte(`{"type":"inMemory","retry":-1,"delay":10}`))
	locker, _ := lock.Create(lock.Options{LockConfig: cfg})
	defer locker.Destroy()

	held, _ := locker.Lock(context.Background(), "k", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := locker.Lock(ctx, "k", time.Second)
	fmt.Println(errors.Is(err, lock.ErrNotAcquired), errors.Is(err, context.DeadlineExceeded))
	_ = held.Unlock(context.Background())
	// Output: true true
}

// Do runs work under a lock that it keeps alive, and cancels the work's
// context if the lock is lost.
func ExampleDo() {
	locker, err := lock.Create(lock.Options{}) // in-memory
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()

	err = lock.Do(context.Background(), locker, "nightly-report", 300*time.Millisecond,
		func(ctx context.Context, l lock.Lock) error {
			// Runs for longer than the ttl: Do extends the lock meanwhile.
			select {
			case <-time.After(time.Second):
				fmt.Println("report written under", l.Key())
				return nil
			case <-ctx.Done(): // the lock was lost: stop
				return context.Cause(ctx)
			}
		})
	switch {
	case errors.Is(err, lock.ErrNotAcquired):
		fmt.Println("someone else is on it")
	case errors.Is(err, lock.ErrLost):
		fmt.Println("lost the lock midway")
	case err != nil:
		log.Fatal(err)
	}
	// Output: report written under nightly-report
}

// With fencing on (lockOptions.fencing), every acquisition of a key gets a
// larger token; the protected resource refuses writes with a token smaller
// than one it has seen, which stops a holder that was paused past its
// validity.
func ExampleLock_token() {
	lo := config.DefaultLockOptions()
	lo.Fencing = true
	locker, err := lock.Create(lock.Options{LockConfig: &config.Config{Type: config.InMemory, LockOptions: lo}})
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()

	ctx := context.Background()
	for range 3 {
		l, err := locker.Lock(ctx, "ledger", time.Second)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("token", l.Token()) // send it along with every write
		l.Unlock(ctx)
	}
	// Output:
	// token 1
	// token 2
	// token 3
}

// LockAll takes every key of a set, or none.
func ExampleLocker_lockAll() {
	locker, err := lock.Create(lock.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()
	ctx := context.Background()

	transfer, err := locker.LockAll(ctx, []string{"account:1", "account:2"}, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding", transfer.Keys())
	_, err = locker.Lock(ctx, "account:2", time.Second)
	fmt.Println("account:2 alone:", errors.Is(err, lock.ErrNotAcquired))
	_, err = locker.LockAll(ctx, []string{"account:3", "account:3"}, time.Second)
	fmt.Println("a key twice:", errors.Is(err, lock.ErrInvalidArgument))
	transfer.Unlock(ctx)
	// Output:
	// holding [account:1 account:2]
	// account:2 alone: true
	// a key twice: true
}

// An Observer sees what the Locker does; SlogObserver logs it.
func ExampleSlogObserver() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level:       slog.LevelWarn, // trouble only
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	locker, err := lock.Create(lock.Options{Observer: lock.SlogObserver(logger)})
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()
	ctx := context.Background()
	l, _ := locker.Lock(ctx, "job", time.Second)
	locker.Lock(ctx, "job", time.Second) // refused: logged at Warn
	l.Unlock(ctx)
	// Output: level=WARN msg="lock lock" kind=lock took=0s key=job attempts=1 err="lock: lock \"job\": not acquired after 1 attempt: node 0 (memory): held by another owner"
}

// dropTime removes the attributes that change from run to run.
func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	if a.Key == "took" {
		return slog.Duration("took", 0)
	}
	return a
}
