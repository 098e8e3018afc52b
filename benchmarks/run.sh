#!/usr/bin/env bash
# Runs the benchmarks into out/bench.txt and compares the implementations
# side by side with benchstat.
#
#   BENCH       -bench pattern (default: . , every case), e.g. 'Sequential/N=3'
#   COUNT       -count, runs of each benchmark (default: 6)
#   BENCHFLAGS  more `go test` flags, e.g. '-benchtime 2000x' or '-cpu 1'
#   GO          the go command (default: go)
#
# Needs redis-server (PATH, /usr/bin/redis-server, or $LOCK_BENCH_REDIS_SERVER):
# the benchmarks start their own masters on free loopback ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

GO="${GO:-go}"
BENCH="${BENCH:-.}"
COUNT="${COUNT:-6}"

mkdir -p out
# shellcheck disable=SC2086 # BENCHFLAGS is a list of flags
"$GO" test -run '^$' -bench "$BENCH" -count "$COUNT" -timeout 60m ${BENCHFLAGS:-} | tee out/bench.txt
echo
"$GO" tool benchstat -col /impl out/bench.txt
