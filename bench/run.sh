#!/usr/bin/env bash
# The read path and view ingest against a ceiling: builds in release mode,
# makes a store of SIZE articles with reader activity through
# `frontpage demo` (10 views per article; SIZE/4 readers, at most 300,000),
# starts the server, and drives each request with wrk on loopback, bounded
# in time. In the same run it measures a minimal actix-web server
# (examples/ceiling.rs, same worker count) that returns a fixed body the
# size of an article response, and prints every figure as a share of it.
# Not part of `cargo test`. Usage:
#   bench/run.sh [SIZE]                 # default 100000 articles
#   DURATION=5s CONNECTIONS=32 RUNS=1 bench/run.sh 10000
#   STORE=/tmp/1m.db bench/run.sh 1000000  # fill that file once, and run
#                                          # on a copy of it after
# Prints a markdown table. Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-100000}
READERS=${READERS:-$(( SIZE / 4 < 1000 ? 1000 : (SIZE / 4 > 300000 ? 300000 : SIZE / 4) ))}
VIEWS=${VIEWS:-$(( SIZE * 10 ))}
DURATION=${DURATION:-10s}
# Each row is the median of RUNS runs (by share of the ceiling run paired
# with each; see `paired`): one run on a shared two-core machine lands
# anywhere within about ±20% of the next.
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WORKERS=${WORKERS:-$(nproc)}
PORT=${PORT:-18301}
CEILING_PORT=${CEILING_PORT:-18302}
export ARTICLES=$SIZE READERS

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin frontpage --example ceiling
bin=target/release/frontpage

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# serve STORE: starts the server on STORE in the background, as $server.
serve() {
  DATABASE_URL=$1 FRONTPAGE_BIND_ADDR=127.0.0.1:$PORT FRONTPAGE_RATE_LIMIT_PER_MIN=0 FRONTPAGE_DEMO=false \
    FRONTPAGE_WORKERS=$WORKERS RUST_LOG=warn,frontpage::related=info,frontpage::recommend=info,frontpage::state=info \
    $bin serve >"$work/server.log" 2>&1 &
  server=$!
  pids+=("$server")
}
# Waits for a quiet server: the Related index, the reading history, the
# caches sized and filled (older articles' Related lists too), and the
# Related lists of older articles stored (the first start on a
# million-article store computes them for a quarter of an hour or so; a
# kept store has them).
quiet() {
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.05; done
  for _ in $(seq 36000); do
    grep -q "reading history loaded" "$work/server.log" \
      && grep -q "article cache warmed" "$work/server.log" \
      && grep -q "older articles warmed\|older related lists failed" "$work/server.log" \
      && curl -s "http://127.0.0.1:$PORT/metrics" | grep -q "^frontpage_related_up_to_date 1$" && break
    sleep 0.1
  done
}

# The server measured runs on a copy of a kept store: the views POSTed
# would otherwise stay in it, and every later run would measure a store
# with hundreds of thousands more views than it was filled with.
db=$work/bench.db
kept=${STORE:-}
if [[ -n $kept && -e $kept ]]; then
  echo "using a copy of the store in $kept" >&2
else
  echo "filling a store: $SIZE articles, $READERS readers, $VIEWS views" >&2
  DATABASE_URL=${kept:-$db} $bin demo --articles "$SIZE" --readers "$READERS" --views "$VIEWS" >&2
  if [[ -n $kept ]]; then
    # A first start stores the Related lists of older articles: in the
    # kept store, so that later runs find them.
    serve "$kept"
    quiet
    kill "$server"
    wait "$server" || true
  fi
fi
if [[ -n $kept ]]; then
  # With its write-ahead log: no server has it open, so the two agree.
  cp "$kept" "$db"
  if [[ -e $kept-wal ]]; then cp "$kept-wal" "$db-wal"; fi
fi

serve "$db"
started=$(date +%s.%N)
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.05; done
ready=$(awk -v from="$started" -v to="$(date +%s.%N)" 'BEGIN {printf "%.2f", to - from}')
# Peak RSS counts the database file's pages the server has mapped (the
# whole file in each connection, shared with the page cache); the peak of its own
# memory (anonymous pages) is sampled every second besides.
(
  peak=0
  while kill -0 "$server" 2>/dev/null; do
    anon=$(awk '/RssAnon/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
    if (( anon > peak )); then peak=$anon; echo "$peak" >"$work/anon-peak"; fi
    sleep 1
  done
) &
pids+=("$!")
quiet

source bench/wrk.sh
base=http://127.0.0.1:$PORT/api/v1
random() { PATTERN=$1 measure -s bench/random.lua "http://127.0.0.1:$PORT"; }
# As a browser asks: for a compressed body.
browser() { PATTERN=$1 measure -H "Accept-Encoding: gzip, deflate, br, zstd" -s bench/random.lua "http://127.0.0.1:$PORT"; }
# The median of N `measure` lines on stdin, by requests/s.
median() { sort -t'|' -k1,1 -g | sed -n "$(( ($1 + 1) / 2 ))p"; }
# A measurement run RUNS times; its median run.
steady() { for _ in $(seq "$RUNS"); do "$@"; done | median "$RUNS"; }

body_bytes=$(curl -s "$base/articles/1" | wc -c)
target/release/examples/ceiling "127.0.0.1:$CEILING_PORT" "$body_bytes" "$WORKERS" &
pids+=("$!")
until curl -sf "http://127.0.0.1:$CEILING_PORT/" >/dev/null; do sleep 0.05; done
# The ceiling, driven with one URL or, for rows whose paths are random, by
# the same wrk Lua script: making the paths costs the client CPU it shares
# with the server.
ceiling_one() { measure "http://127.0.0.1:$CEILING_PORT/"; }
ceiling_random() { PATTERN="/api/v1/articles/{id}" measure -s bench/random.lua "http://127.0.0.1:$CEILING_PORT"; }
# paired CEILING COMMAND...: runs the request and right after it the
# ceiling, RUNS times, and prints the pair whose share of its ceiling is the
# median, as `requests/s|p50|p99|errors|share`. A shared machine's speed
# drifts over minutes (two bench runs here put article by id at 32% and 63%
# of a ceiling measured once, minutes later); a ceiling run next to each run
# of the row drifts with it.
paired() {
  local ceiling=$1 run top
  shift
  for _ in $(seq "$RUNS"); do
    run=$("$@")
    top=$("$ceiling")
    awk -v run="$run" -v top="$top" \
      'BEGIN {split(run, r, "|"); split(top, t, "|"); printf "%s|%.1f\n", run, 100 * r[1] / t[1]}'
  done | sort -t'|' -k5,5 -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

article=$(paired ceiling_random random "/api/v1/articles/{id}")
article_compressed=$(paired ceiling_random browser "/api/v1/articles/{id}")
page=$(paired ceiling_random random "/api/v1/articles/{id}?include=related,ranking,recommendations&reader=reader-{reader}")
first_page=$(paired ceiling_one measure "$base/articles")
category_page=$(paired ceiling_one measure "$base/articles?category=science")
related=$(paired ceiling_random random "/api/v1/articles/{id}/related")
ranking=$(paired ceiling_one measure "$base/ranking")
recommendations=$(paired ceiling_random random "/api/v1/recommendations?reader=reader-{reader}")
views=$(paired ceiling_random measure -s bench/post-view.lua "http://127.0.0.1:$PORT")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

# Five runs each, and the median, for the table's first rows: with the
# client and the server sharing two cores, one run of the ceiling lands
# 20% above or below the next, depending on how the scheduler pairs their
# threads.
ceiling=$(RUNS=5 steady ceiling_one)
ceiling_random=$(RUNS=5 steady ceiling_random)

# row NAME FIGURES: FIGURES as `paired` prints them (a ceiling's own share
# is 100).
row() {
  IFS='|' read -r rps p50 p99 errors share <<<"$2"
  echo "| $1 | $rps | ${share:-100}% | $p50 | $p99 | $errors |"
}
echo
echo "Store: $SIZE articles, $READERS readers, $VIEWS views; $WORKERS workers, $CONNECTIONS connections; each row the median of $RUNS runs of $DURATION, each run followed by one of its ceiling (the ceiling rows: the median of 5 runs)."
anon=$(cat "$work/anon-peak" 2>/dev/null || echo 0)
echo "Answered /readyz ${ready} s after start; peak server RSS $((rss / 1024)) MiB, of which its own memory (not mapped database pages) peaked at $((anon / 1024)) MiB; a typical article response is $body_bytes bytes."
grep -h "related index and lists built\|related lists of older articles\|reading history loaded\|article cache warmed" "$work/server.log" \
  | sed -E 's/^[^ ]+ +INFO +/  - /' || true
echo
echo "| request | req/s | of ceiling | p50 | p99 | errors |"
echo "|---|---|---|---|---|---|"
row "ceiling: fixed $body_bytes-byte body (examples/ceiling.rs), one URL" "$ceiling"
row "ceiling, random paths (bench/random.lua)" "$ceiling_random"
row "GET article by id (random ids) ²" "$article"
row "GET article by id, as a browser asks (brotli) ²" "$article_compressed"
row "GET article with include=related,ranking,recommendations ²" "$page"
row "GET first list page" "$first_page"
row "GET category list page (science)" "$category_page"
row "GET related (random articles) ²" "$related"
row "GET ranking" "$ranking"
row "GET recommendations (random readers) ²" "$recommendations"
row "POST view (durable) ²" "$views"
echo
echo "Each row's share is that of its median run against the ceiling run right after it. ² against the ceiling driven by the same Lua path generator; the other rows against the one-URL ceiling."
