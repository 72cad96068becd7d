#!/usr/bin/env bash
# Builds images without a registry: a minimal root filesystem holding one binary and exactly the
# shared libraries it links, imported with `docker import`. Users with a registry build
# Dockerfile.ratelimiter instead.
#   IMAGE_TAG=local compose/build-local-images.sh   → operator-tui/ratelimiter-svc:TAG, operator-tui/redis:TAG
#   IMAGES=operator-tui compose/build-local-images.sh → operator-tui/operator-tui:TAG (compose/tikv-sim.yml)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${IMAGE_TAG:-local}
images=${IMAGES:-ratelimiter}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# rootfs DIR BINARY DEST: the binary at DEST plus every library ldd names, at its own path.
rootfs() {
  local dir=$1 bin=$2 dest=$3
  mkdir -p "$dir/tmp" "$dir/etc" "$dir/data" "$(dirname "$dir$dest")"
  chmod 1777 "$dir/tmp"
  echo "root:x:0:0:root:/:/bin/false" > "$dir/etc/passwd"
  echo "root:x:0:" > "$dir/etc/group"
  cp "$bin" "$dir$dest"
  ldd "$bin" | awk '/=>/ { print $3 } /^[[:space:]]*\/lib/ { print $1 }' | while read -r lib; do
    [ -n "$lib" ] && cp --parents -L "$lib" "$dir"
  done
}

if [ "$images" = operator-tui ]; then
  bin=${OPERATOR_TUI_BIN:-target/release/operator-tui}
  if [ ! -x "$bin" ]; then
    cargo build --release --locked -p operator-tui >&2
  fi
  rootfs "$work/operator-tui" "$bin" /usr/local/bin/operator-tui
  # A debug build carries hundreds of MB of debug info the container never reads.
  strip --strip-debug "$work/operator-tui/usr/local/bin/operator-tui"
  # Its HTTP client (reqwest with rustls) refuses to start without the system's CA roots.
  mkdir -p "$work/operator-tui/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$work/operator-tui/etc/ssl/certs/"
  tar -C "$work/operator-tui" -c . | docker import \
    -c 'ENTRYPOINT ["/usr/local/bin/operator-tui"]' \
    -c 'ENV HOME=/tmp' \
    - "operator-tui/operator-tui:$tag" >/dev/null
  echo "operator-tui/operator-tui:$tag"
  exit 0
fi

node_bin=${RATELIMITER_SVC_BIN:-target/release/ratelimiter-svc}
if [ ! -x "$node_bin" ]; then
  cargo build --release --locked -p ratelimiter-svc >&2
fi
redis_bin=$(command -v redis-server) || { echo "redis-server is not installed: apt-get install -y redis-server" >&2; exit 1; }

rootfs "$work/node" "$node_bin" /usr/local/bin/ratelimiter-svc
tar -C "$work/node" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/bin/ratelimiter-svc"]' \
  -c 'ENV RL_LISTEN=0.0.0.0:8080' \
  -c 'EXPOSE 8080' \
  - "operator-tui/ratelimiter-svc:$tag" >/dev/null

rootfs "$work/redis" "$redis_bin" /usr/bin/redis-server
tar -C "$work/redis" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/bin/redis-server"]' \
  -c 'CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/data"]' \
  -c 'EXPOSE 6379' \
  - "operator-tui/redis:$tag" >/dev/null

echo "operator-tui/ratelimiter-svc:$tag operator-tui/redis:$tag"
