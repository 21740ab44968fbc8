#!/usr/bin/env bash
# Failover load test (issue 5): two server replicas + a worker on
# PostgreSQL + a private Redis, a round-robin proxy with retry on
# connection errors, one replica restarted under load. Also measures
# forward-auth throughput on PostgreSQL+Redis vs SQLite alone and the
# PostgreSQL connections per replica. Bounded: about 45 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
go build -trimpath -o "$OUT/gatehouse" ./cmd/gatehouse
go build -o "$OUT/failover" ./bench/failover
"$OUT/failover" -bin "$OUT/gatehouse" "$@"
