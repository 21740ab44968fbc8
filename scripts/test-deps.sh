#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine:
# PostgreSQL and Redis running, nginx (with set-misc for set_escape_uri),
# Chromium for the browser tests. Safe to run again; does nothing when all
# is present.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_set_misc_module.so ] || need+=(libnginx-mod-http-set-misc)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test-deps: missing ${need[*]} (install them; tests that need them will skip unless CI=true)"
  fi
fi

# Caddy for the forward_auth end-to-end test: built from the Go module proxy
# (a few minutes on 2 cores, once) into /usr/local/bin as root, so every
# checkout and CI clone on the machine finds it, else into .cache/bin.
repo="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v caddy >/dev/null 2>&1 && [ ! -x "$repo/.cache/bin/caddy" ]; then
  bindir="$repo/.cache/bin"
  [ "$(id -u)" = 0 ] && bindir=/usr/local/bin
  echo "test-deps: building caddy into $bindir"
  (cd "$repo" && GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}" GOBIN="$bindir" \
    go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9) \
    || echo "test-deps: could not build caddy (tests that need it will skip unless CI=true)"
fi

# PostgreSQL: start the machine's cluster when it is installed but stopped.
if command -v pg_lsclusters >/dev/null 2>&1; then
  if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    echo "test-deps: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

# Redis: start the machine's server on 6379 when it is not answering.
if command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "test-deps: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
exit 0
