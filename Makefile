# Build and test targets. The repository is four Go modules tied together by
# go.work: the library (.), its Docker-backed test suites (integration/),
# the Prometheus collector (prom/) and the benchmarks (benchmarks/).
# `make test` runs every test of every module.
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: image test test-lib test-integration test-prom test-consumer vet lint bench bench-smoke chart

## image: build the local Redis image (lock-redis:7.0-clock1, the default of
## scripts/redis-image.sh and integration.DefaultImage, or $LOCK_REDIS_IMAGE)
## if missing, and install redis-server; it compiles scripts/clockrate.c into
## the image (needs a C compiler)
image:
	bash scripts/redis-image.sh

## test: every module's tests, with the race detector
test: image test-lib test-integration test-prom test-consumer

## test-lib: the library's own tests (standard library only; the Redis ones
## run redis-server processes)
test-lib:
	$(GO) test -race -count=1 ./...

## test-integration: the suites on real masters in Docker and in processes:
## conformance, redlock, TLS/ACL (production), faults; the broken variants
## of the algorithm that the safety suite shows caught need -tags lockbroken
test-integration:
	cd integration && $(GO) test -race -count=1 -tags lockbroken ./...

## test-prom: the Prometheus collector (a module of its own)
test-prom:
	cd prom && $(GO) test -race -count=1 ./...

## test-consumer: a module outside the workspace that depends on the library
## and prom as a user's would (replace directives to this tree only) builds
## a program, and imports nothing test-only
test-consumer:
	bash scripts/consumer-check.sh

## vet: go vet on every module
vet:
	$(GO) vet ./...
	cd integration && $(GO) vet -tags lockbroken ./...
	cd prom && $(GO) vet ./...
	cd benchmarks && $(GO) vet ./...

## lint: staticcheck (a pinned version, from the module proxy) on every module
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags lockbroken ./redlock/...
	cd integration && $(GO) run $(STATICCHECK) -tags lockbroken ./...
	cd prom && $(GO) run $(STATICCHECK) ./...
	cd benchmarks && $(GO) run $(STATICCHECK) ./...

## bench: the benchmarks against go-redsync/redsync and a raw-redigo floor
## (benchmarks/, a module of its own), then a benchstat comparison; they
## start their own redis-server masters on loopback. BENCH (pattern) and
## COUNT (runs, default 6) narrow them: make bench BENCH=Parallel/N=3 COUNT=3
bench: image
	BENCH='$(BENCH)' COUNT='$(COUNT)' BENCHFLAGS='$(BENCHFLAGS)' bash benchmarks/run.sh

## bench-smoke: every benchmark once, one iteration each, and the adapters'
## own tests: proves the benchmarks still build and run (CI runs it)
bench-smoke: image
	cd benchmarks && $(GO) test -count=1 -run . -bench . -benchtime 1x

## chart: docs/benchmarks.svg from benchmarks/out/bench.txt (make bench first)
chart:
	cd benchmarks && $(GO) run ./chart -in out/bench.txt -out ../docs/benchmarks.svg
