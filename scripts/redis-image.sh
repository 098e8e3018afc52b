#!/usr/bin/env bash
# Build the local Redis image used by the integration tests, without a registry.
#
# The image is a minimal rootfs (redis-server + redis-cli + the shared libraries
# they link against) imported with `docker import`, so nothing is pulled. It
# also carries libclockrate (scripts/clockrate.c, compiled here) at
# $CLOCKRATE_DEST, named by the image label $CLOCKRATE_LABEL; the harness
# LD_PRELOADs it into redis-server for integration.WithClockRate. redis-server,
# and a C compiler when none is present, are installed with apt-get.
#
#   LOCK_REDIS_IMAGE  image name to build (default: lock-redis:7.0-clock1)
#   LOCK_REDIS_FORCE  set to 1 to rebuild even if the image already exists
#
# Idempotent: if the image already exists it exits 0 once redis-server is
# installed. Change the
# default tag (here and integration.DefaultImage) whenever the image content
# changes, so that machines with an older image build the new one.
set -euo pipefail

IMAGE="${LOCK_REDIS_IMAGE:-lock-redis:7.0-clock1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLOCKRATE_SRC="$HERE/clockrate.c"
# Where libclockrate lives inside the image; integration/harness.go reads the
# path from this image label, so the two cannot disagree.
CLOCKRATE_DEST=/usr/lib/lock/libclockrate.so
CLOCKRATE_LABEL=com.leverege.lock.clockrate

log() { printf 'redis-image: %s\n' "$*" >&2; }
die() { printf 'redis-image: error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found on PATH"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "cannot reach the Docker engine (is dockerd running and is the socket accessible?)"

# --- 1. redis-server and a C compiler on the host -----------------------------
apt_updated=0
# apt_install PKG...: install Debian packages without starting any daemon.
apt_install() {
  local pkg="$*"
  command -v apt-get >/dev/null 2>&1 || die "$pkg missing and apt-get is unavailable; install it yourself"
  [[ "$(id -u)" == "0" ]] || die "$pkg missing; run as root (apt-get install) or install it first"
  log "$pkg not found; installing with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Do not let the package start a daemon on this machine.
  local policy_added=0 rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  if [[ "$apt_updated" == "0" ]]; then
    apt-get update -qq || rc=$?
    apt_updated=1
  fi
  if [[ "$rc" == "0" ]]; then
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  fi
  if [[ "$policy_added" == "1" ]]; then rm -f /usr/sbin/policy-rc.d; fi
  [[ "$rc" == "0" ]] || die "apt-get install $pkg failed (exit $rc)"
}

if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after apt-get install"
fi

# The library's own tests run redis-server processes whatever image the
# integration tests use, so it is installed first, even when the image is
# there already.
if [[ "${LOCK_REDIS_FORCE:-0}" != "1" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "image $IMAGE already present; nothing to do"
  exit 0
fi
# On a forced rebuild, the previous image (if any) is removed afterwards.
OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"

[[ -f "$CLOCKRATE_SRC" ]] || die "$CLOCKRATE_SRC not found"
CC="${CC:-cc}"
if ! command -v "$CC" >/dev/null 2>&1 || [[ ! -e /usr/include/stdio.h ]]; then
  apt_install gcc libc6-dev
  CC=gcc
fi

SERVER="$(command -v redis-server)"
CLI="$(command -v redis-cli || true)"
log "using $(readlink -f "$SERVER") ($("$SERVER" --version | awk '{print $3}'))"
log "using $("$CC" --version | head -n1)"

# --- 2. the rootfs ---------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lock-redis-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/data" "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
chmod 0777 "$ROOT/data"

# Debian's /usr/bin/redis-server is a symlink to redis-check-rdb and Redis picks
# its mode from argv[0]: dereference it and keep the name redis-server.
cp -L "$SERVER" "$ROOT/usr/local/bin/redis-server"
bins=("$ROOT/usr/local/bin/redis-server")
if [[ -n "$CLI" ]]; then
  cp -L "$CLI" "$ROOT/usr/local/bin/redis-cli"
  bins+=("$ROOT/usr/local/bin/redis-cli")
fi

# libclockrate at a fixed path; it needs only libc and the loader.
mkdir -p "$ROOT$(dirname "$CLOCKRATE_DEST")"
"$CC" -O2 -Wall -Wextra -fPIC -shared -fvisibility=hidden \
  -o "$ROOT$CLOCKRATE_DEST" "$CLOCKRATE_SRC" \
  || die "cannot compile $CLOCKRATE_SRC"

# Every shared library (and the loader) that ldd reports, copied to the same path.
libs="$(ldd "${bins[@]}" "$ROOT$CLOCKRATE_DEST" | awk '
  $2 == "=>" && $3 ~ /^\// { print $3 }
  $1 ~ /^\// { print $1 }
' | grep -v ':$' | sort -u)"
[[ -n "$libs" ]] || die "ldd reported no shared libraries for $SERVER (static binary?)"
while IFS= read -r lib; do
  [[ -e "$lib" ]] || die "library $lib listed by ldd does not exist"
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done <<<"$libs"
[[ -e "$ROOT/lib64/ld-linux-x86-64.so.2" || "$(uname -m)" != "x86_64" ]] \
  || die "dynamic loader /lib64/ld-linux-x86-64.so.2 missing from the rootfs"

# Minimal identity files so nothing in libc complains about unknown uids.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"

log "rootfs: $(du -sh "$ROOT" | cut -f1), $(wc -l <<<"$libs") shared objects"

# --- 3. import -------------------------------------------------------------
tar -C "$ROOT" -cf - . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/redis-server"]' \
  --change 'EXPOSE 6379' \
  --change 'WORKDIR /data' \
  --change "LABEL $CLOCKRATE_LABEL=$CLOCKRATE_DEST" \
  -m "lock integration-test Redis (local rootfs of $(readlink -f "$SERVER"), with libclockrate)" \
  - "$IMAGE" >/dev/null

# --- 4. smoke test: the binary must run inside the image ---------------------
# smoke NAME ARGS...: docker run --rm, bounded (a hang, such as a preload
# deadlocking before main, must not hang the build); prints the output.
smoke() {
  local name="lock-redis-smoke-$1-$$" rc=0 out
  shift
  out="$(timeout 60 docker run --rm --name "$name" --network none "$@" 2>&1)" || rc=$?
  if [[ "$rc" == "124" ]]; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    out="timed out after 60s: $out"
  fi
  printf '%s\n' "$out"
  return "$rc"
}
fail_smoke() {
  docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
  die "$1 (removed the image): $2"
}
out="$(smoke plain "$IMAGE" --version)" || fail_smoke "built image does not run" "$out"
# ... and the same with libclockrate preloaded (ld.so only warns when a preload
# is missing and runs the binary anyway; a warning changes the output).
ftout="$(smoke clockrate -e LD_PRELOAD="$CLOCKRATE_DEST" -e LOCK_CLOCK_RATE=1.5 "$IMAGE" --version)" \
  || fail_smoke "built image does not run with libclockrate preloaded" "$ftout"
if [[ "$ftout" != "$out" ]]; then
  fail_smoke "libclockrate changed the output of redis-server --version" "$ftout"
fi
if [[ -n "$OLD_ID" && "$OLD_ID" != "$(docker image inspect --format '{{.Id}}' "$IMAGE")" ]]; then
  # Fails harmlessly if containers still use it.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || log "previous image ${OLD_ID:7:12} still in use; left in place"
fi
log "built $IMAGE: $out"
