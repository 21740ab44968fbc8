#!/usr/bin/env bash
# OIDC load harness (issue 4). In one run, on this machine, against
# 127.0.0.1 only, it measures requests/s and latency of:
#   - a bare net/http handler serving a 1.5 KB JSON body from memory (the
#     baseline for discovery and JWKS);
#   - GET /.well-known/openid-configuration and GET /oauth2/keys;
#   - POST /oauth2/token, grant_type=client_credentials (client_secret_basic),
#     with opaque access tokens (the default) and with RS256 JWT ones;
#   - POST /oauth2/token, grant_type=refresh_token: every request rotates
#     the token (one connection per wrk thread, each rotating its own
#     family) and gets a new RS256 ID token.
# Gatehouse runs as `gatehouse serve` on SQLite (the embedded default).
# Needs wrk. About a minute. Prints a summary and keeps it in
# bench/oidc/results/<UTC time>.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
DUR=${DUR:-8}         # seconds per measurement
CONNS=${CONNS:-32}    # connections for the read-only endpoints and client_credentials
RCONNS=${RCONNS:-8}   # refresh: connections (= wrk threads, one token family each)
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 1; }
OUT=$(mktemp -d)
RES=bench/oidc/results
mkdir -p "$RES" "$OUT/data"

go build -trimpath -o "$OUT/gatehouse" ./cmd/gatehouse
go build -o "$OUT/bare" ./bench/oidc/bare
go build -o "$OUT/tokens" ./bench/oidc/tokens

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GH=$(freeport); BARE=$(freeport)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $OUT" || rm -rf "$OUT"; }
trap cleanup EXIT

ADMIN_PW="bench admin password"
CC_SECRET="bench-robot-secret-0123456789abcdef"
WEB_SECRET="bench-web-secret-0123456789abcdef"
cat > "$OUT/gatehouse.yaml" <<YAML
log: {level: warn}
bootstrap: {password: "$ADMIN_PW"}
apps:
  - slug: robot
    oidc: {client_id: robot, client_secret: $CC_SECRET, grant_types: [client_credentials], groups: [robots]}
  - slug: robot-jwt
    oidc: {client_id: robot-jwt, client_secret: $CC_SECRET, grant_types: [client_credentials], access_token_format: jwt}
  - slug: web
    oidc: {client_id: web, client_secret: $WEB_SECRET, redirect_uris: ["http://web.test/cb"]}
YAML
BASE="http://127.0.0.1:$GH"
export GATEHOUSE_CONFIG="$OUT/gatehouse.yaml" GATEHOUSE_DATA_DIR="$OUT/data" GATEHOUSE_LISTEN="127.0.0.1:$GH" \
  GATEHOUSE_EXTERNAL_URL="$BASE" GATEHOUSE_METRICS_LISTEN=
"$OUT/gatehouse" serve > "$OUT/gatehouse.log" 2>&1 & pids+=("$!")
for _ in $(seq 200); do curl -fs "$BASE/healthz/ready" >/dev/null 2>&1 && break; sleep 0.1; done
# The baseline serves a body the size of the discovery document.
"$OUT/bare" -listen "127.0.0.1:$BARE" -size "$(curl -fsS -o /dev/null -w '%{size_download}' "$BASE/.well-known/openid-configuration")" & pids+=("$!")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$BARE/" >/dev/null 2>&1 && break; sleep 0.1; done

basic() { printf '%s:%s' "$1" "$2" | base64 -w0; }
cat > "$OUT/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=groups"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(basic robot "$CC_SECRET")"
LUA
sed "s/$(basic robot "$CC_SECRET")/$(basic robot-jwt "$CC_SECRET")/" "$OUT/cc.lua" > "$OUT/ccjwt.lua"

"$OUT/tokens" -base "$BASE" -user admin -pass "$ADMIN_PW" -client web -secret "$WEB_SECRET" -redirect http://web.test/cb -n "$RCONNS" > "$OUT/refresh_tokens.txt"
cat > "$OUT/refresh.lua" <<LUA
-- One connection per thread: each thread rotates its own refresh token
-- family, taking the new token from every response.
local seeds, n = {}, 0
for line in io.lines("$OUT/refresh_tokens.txt") do seeds[#seeds + 1] = line end
function setup(thread) n = n + 1; thread:set("rt", seeds[n]) end
function request()
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic $(basic web "$WEB_SECRET")"}, "grant_type=refresh_token&refresh_token=" .. rt)
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then rt = t end
end
LUA

declare -A rps p50 p99 errs
run() { # name url threads conns [script]
  local name=$1 url=$2 t=$3 c=$4; shift 4
  local out; out=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency "$@" "$url")
  echo "$out" > "$OUT/wrk-$name.txt"
  rps[$name]=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50[$name]=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99[$name]=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs[$name]=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs[$name]=${errs[$name]:-0}
}
wrk -t2 -c"$CONNS" -d2s "$BASE/.well-known/openid-configuration" >/dev/null   # warm-up
# The read-only endpoints are compared with the baseline: three
# interleaved rounds, best of each, so a burst of other load on the
# machine does not land on one side only.
for round in 1 2 3; do
  for pair in "bare http://127.0.0.1:$BARE/" "discovery $BASE/.well-known/openid-configuration" "jwks $BASE/oauth2/keys"; do
    set -- $pair
    prev=${rps[$1]:-0}; prev50=${p50[$1]:-}; prev99=${p99[$1]:-}
    run "$1" "$2" 2 "$CONNS"
    if [ "${rps[$1]}" -lt "$prev" ]; then rps[$1]=$prev; p50[$1]=$prev50; p99[$1]=$prev99; fi
  done
done
run client_credentials "$BASE/oauth2/token" 2 "$CONNS" -s "$OUT/cc.lua"
run client_credentials_jwt "$BASE/oauth2/token" 2 "$CONNS" -s "$OUT/ccjwt.lua"
run refresh "$BASE/oauth2/token" "$RCONNS" "$RCONNS" -s "$OUT/refresh.lua"

{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk on the same machine, ${DUR}s each (bare/discovery/jwks: best of 3 interleaved); SQLite store; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-26s %10s %9s %9s %8s %s\n' endpoint req/s p50 p99 non-2xx note
  for n in bare discovery jwks client_credentials client_credentials_jwt refresh; do
    note=""
    case $n in
      discovery|jwks) note=$(awk -v a="${rps[$n]}" -v b="${rps[bare]}" 'BEGIN {printf "%.2f x bare", a/b}') ;;
      client_credentials) note=$(awk -v a="${rps[$n]}" 'BEGIN {printf "%.1f x Hydra v2.3.0 (440/s); opaque token", a/440}') ;;
      client_credentials_jwt) note="RS256-signed JWT access token" ;;
      refresh) note="rotation + new RS256 ID token; $RCONNS connections" ;;
    esac
    printf '%-26s %10s %9s %9s %8s %s\n' "$n" "${rps[$n]}" "${p50[$n]}" "${p99[$n]}" "${errs[$n]}" "$note"
  done
} | tee "$RES/$(date -u +%Y%m%dT%H%M%SZ).txt"
# Requests cut off when wrk stops at the deadline end in "context
# canceled"; anything else is a real error.
if grep -E 'ERROR' "$OUT/gatehouse.log" | grep -v -e 'context canceled' -e '"msg":"http request"' | grep -q .; then
  echo "gatehouse logged errors:"; grep -E 'ERROR' "$OUT/gatehouse.log" | grep -v -e 'context canceled' -e '"msg":"http request"' | head -5
fi
