#!/usr/bin/env bash
# A consumer's view of the modules: outside the workspace (GOWORK=off), a
# throwaway module that depends on the library and on prom as a user's
# service would, with replace directives to this tree for those two only,
# builds a program that uses both. It then checks what the library brings
# into a consumer's build: the modules that provide packages to a program
# that imports only the root package must be the library and redigo, and
# nothing test-only (testcontainers, moby, OpenTelemetry, goleak, testify)
# may appear in that program's module graph but by way of redigo's own
# go.mod. It prints the sizes of both lists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOWORK=off GOFLAGS=-mod=mod

fail() { printf 'consumer-check: %s\n' "$*" >&2; exit 1; }

# 1. A service that uses the library and prom.
mkdir -p "$work/svc"
cat >"$work/svc/go.mod" <<MOD
module example.com/svc

go 1.26.0

require (
	github.com/leverege/lock v0.1.0
	github.com/leverege/lock/prom v0.1.0
)

replace (
	github.com/leverege/lock => $root
	github.com/leverege/lock/prom => $root/prom
)
MOD
cat >"$work/svc/main.go" <<'GO'
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/prom"
)

func main() {
	c := prom.New()
	prometheus.MustRegister(c)
	l, err := lock.Create(lock.Options{Observer: c})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Destroy()
	err = lock.Do(context.Background(), l, "job", time.Second, func(context.Context, lock.Lock) error { return nil })
	fmt.Println("ran:", err == nil)
}
GO
(cd "$work/svc" && go mod tidy >/dev/null && go build -o svc . && ./svc) >"$work/svc.out" 2>&1 ||
	{ cat "$work/svc.out" >&2; fail "a service using the library and prom does not build or run outside the workspace"; }
grep -q "ran: true" "$work/svc.out" || { cat "$work/svc.out" >&2; fail "the service ran, but not as it should"; }
echo "consumer-check: a service using lock and lock/prom builds and runs outside the workspace"

# 2. A program that imports only the root package.
mkdir -p "$work/lib"
cat >"$work/lib/go.mod" <<MOD
module example.com/lib

go 1.26.0

require github.com/leverege/lock v0.1.0

replace github.com/leverege/lock => $root
MOD
cat >"$work/lib/main.go" <<'GO'
package main

import lock "github.com/leverege/lock"

func main() {
	l, err := lock.FromEnv("app")
	if err != nil {
		panic(err)
	}
	defer l.Destroy()
}
GO
cd "$work/lib"
go mod tidy >/dev/null
go build -o /dev/null .
providers="$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u)"
graph="$(go list -m all)"
printf 'consumer-check: modules providing packages to a program importing lock: %s\n' "$(echo $providers)"
printf 'consumer-check: its module graph (go list -m all): %d modules: %s\n' "$(echo "$graph" | wc -l)" "$(echo $graph | tr '\n' ' ')"
want="example.com/lib
github.com/gomodule/redigo
github.com/leverege/lock"
[[ "$providers" == "$want" ]] || fail "the build takes packages from more than the library and redigo"
if echo "$graph" | grep -Eq 'testcontainers|moby|opentelemetry|goleak|containerd|docker'; then
	fail "test-only modules in a consumer's module graph: $(echo "$graph" | grep -E 'testcontainers|moby|opentelemetry|goleak|containerd|docker' | tr '\n' ' ')"
fi
# Only redigo's own go.mod may bring what its tests need.
for m in $(echo "$graph" | awk '{print $1}'); do
	case "$m" in
	example.com/lib | github.com/leverege/lock | github.com/gomodule/redigo) ;;
	*)
		why="$(go mod why -m "$m" | tail -n +2 | tr '\n' ' ')"
		go mod graph | grep -q "^github.com/gomodule/redigo@[^ ]* $m@" ||
			go mod graph | grep -q "^github.com/stretchr/testify@[^ ]* $m@" ||
			fail "$m is in a consumer's module graph, not by way of redigo: $why"
		;;
	esac
done
echo "consumer-check: ok"
