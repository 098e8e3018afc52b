# Build and test targets. `make test` runs every test, including the
# integration tests against real Redis masters in Docker (the image is built
# locally by scripts/redis-image.sh; nothing is pulled).
GO ?= go

.PHONY: image test vet bench bench-smoke chart

## image: build the local Redis image (lock-redis:7.0-clock1, the default of
## scripts/redis-image.sh and integration.DefaultImage, or $LOCK_REDIS_IMAGE)
## if missing; it compiles scripts/clockrate.c into it (needs a C compiler)
image:
	bash scripts/redis-image.sh

## test: all tests, with the race detector: the library's, then the
## Prometheus collector's (prom/, a module of its own)
test: image
	$(GO) test -race -count=1 -tags lockbroken ./...
	cd prom && $(GO) vet ./... && $(GO) test -race -count=1 ./...

## vet: go vet
vet:
	$(GO) vet ./...

## bench: the benchmarks against go-redsync/redsync and a raw-redigo floor
## (benchmarks/, a module of its own), then a benchstat comparison; they
## start their own redis-server masters on loopback. BENCH (pattern) and
## COUNT (runs, default 6) narrow them: make bench BENCH=Parallel/N=3 COUNT=3
bench: image
	BENCH='$(BENCH)' COUNT='$(COUNT)' BENCHFLAGS='$(BENCHFLAGS)' bash benchmarks/run.sh

## bench-smoke: every benchmark once, one iteration each, and the adapters'
## own tests: proves the benchmarks still build and run (CI runs it)
bench-smoke: image
	cd benchmarks && $(GO) vet ./... && $(GO) test -count=1 -run . -bench . -benchtime 1x

## chart: docs/benchmarks.svg from benchmarks/out/bench.txt (make bench first)
chart:
	cd benchmarks && $(GO) run ./chart -in out/bench.txt -out ../docs/benchmarks.svg
