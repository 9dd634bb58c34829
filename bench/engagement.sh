#!/usr/bin/env bash
# Durable view ingest, ranking and recommendation latency over a store with
# millions of view events. Not part of `cargo test`. Usage:
#   bench/engagement.sh                      # 10,000 articles, 100,000 readers, 10,000,000 views
#   VIEWS=1000000 DURATION=10s bench/engagement.sh
# Prints a markdown table. Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

ARTICLES=${ARTICLES:-10000}
READERS=${READERS:-100000}
VIEWS=${VIEWS:-10000000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18099}
export ARTICLES READERS

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
cargo build --release --quiet
bin=target/release/frontpage

work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
db=$work/bench.db

echo "filling a store: $ARTICLES articles, $READERS readers, $VIEWS views" >&2
DATABASE_URL=$db $bin demo --articles "$ARTICLES" --readers "$READERS" --views "$VIEWS" >&2

start_server() {
  DATABASE_URL=$db FRONTPAGE_BIND_ADDR=127.0.0.1:$PORT FRONTPAGE_RATE_LIMIT_PER_MIN=0 FRONTPAGE_DEMO=false \
    RUST_LOG=warn,frontpage::related=info,frontpage::recommend=info "$@" $bin serve >"$work/server.log" 2>&1 &
  server=$!
  # Measure a quiet server: wait for the Related index and the reading
  # history it loads at start-up.
  for _ in $(seq 3000); do
    grep -q "related index and lists built" "$work/server.log" \
      && grep -q "reading history loaded" "$work/server.log" && return
    sleep 0.1
  done
  echo "server did not become ready" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }

source bench/wrk.sh

start_server env
views_before=$(sqlite3 "$db" "SELECT COUNT(*) FROM views")
ingest=$(measure -s bench/post-view.lua "http://127.0.0.1:$PORT")
views_after=$(sqlite3 "$db" "SELECT COUNT(*) FROM views")
ranking=$(measure "http://127.0.0.1:$PORT/api/v1/ranking")
ranking_7d=$(measure "http://127.0.0.1:$PORT/api/v1/ranking?window=7d&metric=views&limit=50")
recommend=$(measure -s bench/recommend.lua "http://127.0.0.1:$PORT")
history_load=$(grep -o 'reading history loaded.*' "$work/server.log" | head -1)
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$server/status")
stop_server
start_server env FRONTPAGE_RANKING_CACHE_SECS=0 FRONTPAGE_RESPONSE_CACHE_SECS=0
uncached=$(measure "http://127.0.0.1:$PORT/api/v1/ranking")
stop_server

row() { IFS='|' read -r rps p50 p99 errors <<<"$2"; echo "| $1 | $rps | $p50 | $p99 | $errors |"; }
echo
echo "Store: $ARTICLES articles, $READERS readers, $views_before view events before the run; $CONNECTIONS connections, $DURATION each; peak server RSS $rss."
echo
echo "| request | req/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
row "POST /articles/{id}/views (durable)" "$ingest"
row "GET /ranking (24h trending, cached 5 s)" "$ranking"
row "GET /ranking?window=7d&metric=views&limit=50" "$ranking_7d"
row "GET /ranking (no cache: sums buckets every request)" "$uncached"
row "GET /recommendations?reader=(random)" "$recommend"
echo
echo "Views committed during the ingest run: $((views_after - views_before)) (rows in the views table)."
echo "Reading history at start: $history_load"
