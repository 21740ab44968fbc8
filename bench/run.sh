#!/usr/bin/env bash
# Forward-auth load harness (issue 3). In one run, on this machine, against
# 127.0.0.1 only, it measures requests/s and p50/p99 latency of:
#   - a bare net/http handler (the baseline), directly and behind nginx;
#   - Gatehouse's nginx endpoint answering allow (valid gate cookie), 401
#     (no cookie) and 403 (signed in, not in allow_groups), directly and
#     behind real nginx with auth_request;
# then floods Gatehouse with 1M unauthenticated checks (random forged gate
# cookies and paths) and reports its RSS before/after and its peak RSS.
# Uses wrk when installed (wrk -t2 -c32), else bench/loadgen. ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
DUR=${DUR:-5}            # seconds per measurement
CONNS=${CONNS:-32}
FLOOD=${FLOOD:-1000000}  # unauthenticated checks for the RSS test
OUT=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/data" "$OUT/nginx/tmp"

go build -trimpath -o "$OUT/gatehouse" ./cmd/gatehouse
go build -o "$OUT/bare" ./bench/bare
go build -o "$OUT/loadgen" ./bench/loadgen

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GH=$(freeport); BARE=$(freeport); NGX=$(freeport); NGXBARE=$(freeport)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cat > "$OUT/gatehouse.yaml" <<YAML
cookie_domain: homelab.local
trusted_proxies: ["127.0.0.1"]
log: {level: warn}
apps:
  - slug: sonarr
    allow_groups: [media]
    forward_auth:
      hosts: [sonarr.homelab.local]
YAML
export GATEHOUSE_CONFIG="$OUT/gatehouse.yaml" GATEHOUSE_DATA_DIR="$OUT/data" GATEHOUSE_LISTEN="127.0.0.1:$GH" \
  GATEHOUSE_EXTERNAL_URL="http://auth.homelab.local:$GH" GATEHOUSE_METRICS_LISTEN=
"$OUT/gatehouse" serve > "$OUT/gatehouse.log" 2>&1 & GPID=$!; pids+=("$GPID")
"$OUT/bare" -listen "127.0.0.1:$BARE" & pids+=("$!")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$GH/healthz/ready" >/dev/null 2>&1 && break; sleep 0.1; done

"$OUT/gatehouse" group create media >/dev/null
echo "alice bench password" | "$OUT/gatehouse" user create alice --group media --password-stdin >/dev/null
echo "bob bench password" | "$OUT/gatehouse" user create bob --password-stdin >/dev/null
ALLOW=$("$OUT/loadgen" signin -base "http://127.0.0.1:$GH" -user alice -pass "alice bench password" -rd http://sonarr.homelab.local/)
DENY=$("$OUT/loadgen" signin -base "http://127.0.0.1:$GH" -user bob -pass "bob bench password" -rd http://sonarr.homelab.local/)

# nginx: one server proxying to the bare handler, one guarding it with
# auth_request against Gatehouse (upstream keepalive on both, as the docs
# recommend for plain nginx).
cat > "$OUT/nginx/nginx.conf" <<NGINX
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid nginx.pid; error_log stderr warn; worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fcgi; uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  upstream bare { server 127.0.0.1:$BARE; keepalive 64; }
  upstream gatehouse { server 127.0.0.1:$GH; keepalive 64; }
  server {
    listen 127.0.0.1:$NGXBARE;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://bare; }
  }
  server {
    listen 127.0.0.1:$NGX;
    location = /_gatehouse {
      internal;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass http://gatehouse/api/authz/nginx;
    }
    location / {
      auth_request /_gatehouse;
      auth_request_set \$user \$upstream_http_remote_user;
      auth_request_set \$signin \$upstream_http_location;
      proxy_set_header Remote-User \$user;
      error_page 401 =302 \$signin;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass http://bare;
    }
  }
}
NGINX
nginx -p "$OUT/nginx" -e stderr -c nginx.conf -g 'daemon off;' 2> "$OUT/nginx.log" & pids+=("$!")
sleep 0.5

# load NAME URL [header...]: prints "NAME rps p50ms p99ms non2xx"
load() {
  local name=$1 url=$2; shift 2
  if command -v wrk >/dev/null 2>&1; then
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    local out; out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "${args[@]}" "$url")
    echo "$out" > "$OUT/wrk-$name.txt"
    awk -v name="$name" '
      function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
      /Requests\/sec/ { rps=$2 }
      $1=="50%" { p50=ms($2) } $1=="99%" { p99=ms($2) }
      /Non-2xx/ { non=$NF }
      END { printf "%-16s %10.0f %8.3f %8.3f %s\n", name, rps, p50, p99, (non==""?0:non) }' <<<"$out"
  else
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    "$OUT/loadgen" load -url "$url" -c "$CONNS" -d "${DUR}s" "${args[@]}" |
      sed -E 's/rps=([0-9.]+) p50=([0-9.]+) p99=([0-9.]+) n=[0-9]+ non2xx=([0-9]+)/\1 \2 \3 \4/' |
      awk -v name="$name" '{ printf "%-16s %10.0f %8.3f %8.3f %s\n", name, $1, $2, $3, $4 }'
  fi
}

rss() { awk -v k="$1" '$1==k":" {print $2}' "/proc/$GPID/status"; }
URL="X-Original-URL: http://sonarr.homelab.local/calendar"
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(command -v wrk >/dev/null && echo "wrk -t2 -c$CONNS" || echo "loadgen -c$CONNS"), ${DUR}s each, load average before: $(cut -d" " -f1-3 /proc/loadavg)"
  printf "%-16s %10s %8s %8s %s\n" case req/s p50_ms p99_ms non2xx
  load bare            "http://127.0.0.1:$BARE/" "$URL" "Cookie: gatehouse_gate=$ALLOW"
  load bare_noheaders  "http://127.0.0.1:$BARE/"
  load allow           "http://127.0.0.1:$GH/api/authz/nginx" "$URL" "Cookie: gatehouse_gate=$ALLOW"
  load unauth_401      "http://127.0.0.1:$GH/api/authz/nginx" "$URL"
  load forbidden_403   "http://127.0.0.1:$GH/api/authz/nginx" "$URL" "Cookie: gatehouse_gate=$DENY"
  load nginx_bare      "http://127.0.0.1:$NGXBARE/"
  load nginx_allow     "http://127.0.0.1:$NGX/calendar" "Host: sonarr.homelab.local" "Cookie: gatehouse_gate=$ALLOW"
  load nginx_401_302   "http://127.0.0.1:$NGX/calendar" "Host: sonarr.homelab.local"
  load nginx_403       "http://127.0.0.1:$NGX/calendar" "Host: sonarr.homelab.local" "Cookie: gatehouse_gate=$DENY"
} | tee "$OUT/summary.txt"

# Flood: unauthenticated checks with random forged cookies and paths.
before=$(rss VmRSS)
sent=0
if command -v wrk >/dev/null 2>&1; then
  cat > "$OUT/flood.lua" <<'LUA'
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function rnd(n) local t = {} for i = 1, n do local k = math.random(1, 64) t[i] = chars:sub(k, k) end return table.concat(t) end
request = function()
  return wrk.format("GET", "/api/authz/nginx", { ["X-Original-URL"] = "http://sonarr.homelab.local/" .. rnd(12), ["Cookie"] = "gatehouse_gate=" .. rnd(64) })
end
LUA
  while [ "$sent" -lt "$FLOOD" ]; do
    n=$(wrk -t2 -c"$CONNS" -d10s -s "$OUT/flood.lua" "http://127.0.0.1:$GH/" | awk '/requests in/ {print $1}')
    sent=$((sent + n))
  done
else
  "$OUT/loadgen" load -url "http://127.0.0.1:$GH/api/authz/nginx" -c "$CONNS" -n "$FLOOD" -random-cookie >/dev/null
  sent=$FLOOD
fi
after=$(rss VmRSS); peak=$(rss VmHWM)
{
  echo "flood: $sent unauthenticated checks; RSS before ${before} kB, after ${after} kB, growth $(( (after - before) / 1024 )) MB; peak RSS ${peak} kB"
  awk '$1=="bare"{b=$2;bp=$4} $1=="allow"{a=$2;ap=$4} $1=="nginx_bare"{nb=$2} $1=="nginx_allow"{na=$2}
       END { printf "ratios: allow/bare %.2f (target >= 0.8), nginx_allow/nginx_bare %.2f (target >= 0.9), allow p99/bare p99 %.2f (target <= 1.5)\n", a/b, na/nb, ap/bp }' "$OUT/summary.txt"
} | tee -a "$OUT/summary.txt"
echo "results in $OUT"
