# Build and test targets. `make test` runs every test, including the
# integration tests against real Redis masters in Docker (the image is built
# locally by scripts/redis-image.sh; nothing is pulled).
GO ?= go

.PHONY: image test vet

## image: build the local Redis image (lock-redis:7.0-clock1, the default of
## scripts/redis-image.sh and integration.DefaultImage, or $LOCK_REDIS_IMAGE)
## if missing; it compiles scripts/clockrate.c into it (needs a C compiler)
image:
	bash scripts/redis-image.sh

## test: all tests, with the race detector
test: image
	$(GO) test -race -count=1 ./...

## vet: go vet
vet:
	$(GO) vet ./...
