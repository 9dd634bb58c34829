#!/usr/bin/env bash
# A bounded mixed load: reads, views, reactions and new articles at once on
# one store, to show that overload ends in 503s with Retry-After, never in a
# 500 or a SQLite "database is locked" reaching a client. Not part of
# `cargo test`. Usage:
#   bench/load.sh                         # 10,000 articles, 64 connections, 30 s
#   CONNECTIONS=256 DURATION=60s bench/load.sh
# Prints the answers by status and the server's errors, if any; exits
# non-zero when a 5xx other than 503 was answered.
set -euo pipefail
cd "$(dirname "$0")/.."

ARTICLES=${ARTICLES:-10000}
READERS=${READERS:-25000}
VIEWS=${VIEWS:-500000}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18097}
TOKEN=load-test-admin-token
export ARTICLES READERS TOKEN

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin frontpage
bin=target/release/frontpage

work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
db=$work/load.db

echo "filling a store: $ARTICLES articles, $READERS readers, $VIEWS views" >&2
DATABASE_URL=$db $bin demo --articles "$ARTICLES" --readers "$READERS" --views "$VIEWS" >&2
DATABASE_URL=$db FRONTPAGE_BIND_ADDR=127.0.0.1:$PORT FRONTPAGE_RATE_LIMIT_PER_MIN=0 \
  FRONTPAGE_DEMO=false FRONTPAGE_ADMIN_TOKEN=$TOKEN RUST_LOG=warn \
  $bin serve >"$work/server.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.05; done

echo "mixed load: $CONNECTIONS connections for $DURATION" >&2
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/mixed.lua "http://127.0.0.1:$PORT" | tee "$work/wrk.out"
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$server/status")
echo
echo "mean latency by route (server side, from /metrics):"
curl -s "http://127.0.0.1:$PORT/metrics" | awk '
  /^frontpage_http_requests_duration_seconds_(sum|count)\{/ {
    match($0, /endpoint="[^"]*"/); e = substr($0, RSTART + 10, RLENGTH - 11)
    match($0, /method="[^"]*"/); m = substr($0, RSTART + 8, RLENGTH - 9)
    k = m " " e
    if ($0 ~ /_sum\{/) sum[k] += $NF; else count[k] += $NF
  }
  END { for (k in count) if (count[k] > 0) printf "  %-50s %8d requests, %8.2f ms\n", k, count[k], 1000 * sum[k] / count[k] }' | sort -k3 -nr
echo
echo "peak server RSS: $rss"
locked=$(grep -c "database is locked" "$work/server.log" || true)
internal=$(grep -c "internal error" "$work/server.log" || true)
echo "server log: $locked 'database is locked', $internal internal errors"
if grep -E "^status 5" "$work/wrk.out" | grep -v "^status 503" | grep -q .; then
  echo "FAILED: server errors other than 503" >&2
  exit 1
fi
