package memlock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/memlock"
)

// A Locker for one process: the second Lock of a held key gives up after
// its retries (here one more attempt, 10ms later).
func ExampleNew() {
	m, err := memlock.New(memlock.WithNamespace("myApp"), memlock.WithRetry(1), memlock.WithDelay(10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Destroy()
	ctx := context.Background()

	l, err := m.LockNs(ctx, "report", time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked", l.Key())

	_, err = m.LockNs(ctx, "report", time.Second)
	fmt.Println("again:", errors.Is(err, lockerr.ErrNotAcquired))

	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	l, err = m.LockNs(ctx, "report", time.Second)
	fmt.Println("after Unlock:", err == nil)
	_ = l.Unlock(ctx)
	// Output:
	// locked myApp:report
	// again: true
	// after Unlock: true
}
