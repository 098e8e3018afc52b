package prom_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/prom"
)

// A Collector is registered with Prometheus and given to the Locker as its
// Observer; the metrics then count what the Locker does.
func ExampleNew() {
	c := prom.New()
	reg := prometheus.NewRegistry() // or prometheus.MustRegister(c)
	reg.MustRegister(c)

	locker, err := lock.Create(lock.Options{Observer: c}) // the in-memory default here
	if err != nil {
		log.Fatal(err)
	}
	defer locker.Destroy()
	ctx := context.Background()
	l, err := locker.Lock(ctx, "report", time.Second)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		fmt.Println(mf.GetName())
	}
	// Output:
	// lock_acquisitions_total
	// lock_attempts_total
	// lock_hold_seconds
	// lock_unlocks_total
	// lock_wait_seconds
}
