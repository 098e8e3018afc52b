// Package benchmarks compares this repository's Redlock client (package
// redlock) with go-redsync/redsync, with the in-process memlock, and with a
// floor of raw redigo round trips, all against real redis-server processes
// on the loopback interface that the benchmarks start themselves.
//
// It is a module of its own, so that redsync and benchstat never enter the
// library's go.mod; the library comes in through a replace directive. Run
// everything with ./run.sh; see bench_test.go for the cases.
package benchmarks
