#!/usr/bin/env bash
# Build the local Redis image used by the integration tests, without a registry.
#
# The image is a minimal rootfs (redis-server + redis-cli + the shared libraries
# they link against) imported with `docker import`, so nothing is pulled.
#
#   LOCK_REDIS_IMAGE  image name to build (default: lock-redis:7)
#   LOCK_REDIS_FORCE  set to 1 to rebuild even if the image already exists
#
# Idempotent: if the image already exists it exits 0 at once.
set -euo pipefail

IMAGE="${LOCK_REDIS_IMAGE:-lock-redis:7}"

log() { printf 'redis-image: %s\n' "$*" >&2; }
die() { printf 'redis-image: error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found on PATH"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "cannot reach the Docker engine (is dockerd running and is the socket accessible?)"

if [[ "${LOCK_REDIS_FORCE:-0}" != "1" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "image $IMAGE already present; nothing to do"
  exit 0
fi
# On a forced rebuild, the previous image (if any) is removed afterwards.
OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"

# --- 1. a redis-server binary on the host -----------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "redis-server not on PATH and apt-get is unavailable; install Redis 7 yourself"
  [[ "$(id -u)" == "0" ]] || die "redis-server not on PATH; run as root (apt-get install) or install redis-server first"
  log "redis-server not found; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Do not let the package start a redis daemon on this machine.
  policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } || rc=$?
  if [[ "$policy_added" == "1" ]]; then rm -f /usr/sbin/policy-rc.d; fi
  [[ "$rc" == "0" ]] || die "apt-get install redis-server failed (exit $rc)"
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after apt-get install"
fi

SERVER="$(command -v redis-server)"
CLI="$(command -v redis-cli || true)"
log "using $(readlink -f "$SERVER") ($("$SERVER" --version | awk '{print $3}'))"

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

# Every shared library (and the loader) that ldd reports, copied to the same path.
libs="$(ldd "${bins[@]}" | awk '
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
  -m "lock integration-test Redis (local rootfs of $(readlink -f "$SERVER"))" \
  - "$IMAGE" >/dev/null

# --- 4. smoke test: the binary must run inside the image ---------------------
if ! out="$(docker run --rm --network none "$IMAGE" --version 2>&1)"; then
  docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
  die "built image does not run (removed it): $out"
fi
if [[ -n "$OLD_ID" && "$OLD_ID" != "$(docker image inspect --format '{{.Id}}' "$IMAGE")" ]]; then
  # Fails harmlessly if containers still use it.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || log "previous image ${OLD_ID:7:12} still in use; left in place"
fi
log "built $IMAGE: $out"
