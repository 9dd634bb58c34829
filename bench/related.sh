#!/usr/bin/env bash
# The Related feed at scale: imports about 100,000 real news articles (the
# 3,824 of ../shared/data/news_articles_2017.jsonl, replicated with new slugs)
# through the bulk API, times the import and the index build, then publishes
# one new article and times until it has its own list and appears in an
# older article's list. Reports the server's memory. Not part of `cargo test`.
# Usage:
#   bench/related.sh                 # 27 copies, about 103,000 articles
#   COPIES=3 bench/related.sh        # a quick run
# Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

COPIES=${COPIES:-27}
PORT=${PORT:-18097}
SOURCE=${SOURCE:-../shared/data/news_articles_2017.jsonl}
TOKEN=bench-token
API=http://127.0.0.1:$PORT/api/v1

cargo build --release --quiet
bin=target/release/frontpage
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# NDJSON files of 4,000 articles each (the bulk endpoint takes 32 MiB).
python3 - "$SOURCE" "$COPIES" "$work" <<'PY'
import html, json, sys
source, copies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stories = [json.loads(line) for line in open(source)]
stories = [s for s in stories if (s.get("text") or "").strip()]
lines = []
for copy in range(copies):
    for s in stories:
        y, m, d = (int(x) for x in s["publish_date"].split()[0].split("/"))
        title = (s.get("title") or "").strip() or " ".join(s["text"].split()[:10])
        lines.append(json.dumps({
            "slug": f"c{copy}-{s['article_id']}",
            "title": title[:300],
            "body_html": "<p>" + html.escape(s["text"][:400000]) + "</p>",
            "category": "news",
            "status": "published",
            "published_at": f"{y:04d}-{m:02d}-{d:02d}T12:00:00Z",
        }))
for i in range(0, len(lines), 4000):
    with open(f"{out}/part-{i // 4000:03d}.ndjson", "w") as f:
        f.write("\n".join(lines[i:i + 4000]) + "\n")
print(len(lines), file=sys.stderr)
PY

DATABASE_URL=$work/related.db FRONTPAGE_BIND_ADDR=127.0.0.1:$PORT FRONTPAGE_DEMO=false \
  FRONTPAGE_ADMIN_TOKEN=$TOKEN FRONTPAGE_RATE_LIMIT_PER_MIN=0 RUST_LOG=info \
  $bin serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
admin() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
admin -X POST "$API/categories" -d '{"slug": "news", "name": "News"}' >/dev/null

now() { date +%s.%N; }
start=$(now)
for part in "$work"/part-*.ndjson; do
  curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \
    --data-binary "@$part" "$API/articles/bulk" >/dev/null
done
imported=$(now)
total=$(curl -sf "$API/articles?total=true&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])')

# The refresher rebuilds once the import is in; wait for that log line.
until grep -q "articles=$total " "$work/server.log"; do sleep 0.5; done
indexed=$(now)
build=$(grep "articles=$total " "$work/server.log" | tail -1 | sed -E 's/.*seconds=([0-9.]+).*/\1/')

# A new article: the first half of an imported story, so it belongs in that
# story's list without being a near-duplicate of it.
older=$(curl -sf "$API/articles/c0-1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
python3 - "$SOURCE" >"$work/new.json" <<'PY'
import html, json, sys
s = next(json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["article_id"] == "1")
words = s["text"].split()
print(json.dumps({"title": "Follow-up: " + s["title"], "category": "news", "status": "published",
                  "body_html": "<p>" + html.escape(" ".join(words[: len(words) // 2])) + "</p>"}))
PY
published=$(now)
new=$(admin -X POST "$API/articles" --data-binary "@$work/new.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
until curl -sf "$API/articles/$new/related?limit=1" | grep -q '"article"'; do sleep 0.05; done
own=$(now)
until curl -sf "$API/articles/$older/related?limit=50" | grep -q "\"id\":$new,"; do sleep 0.05; done
joined=$(now)

read -r rss hwm < <(awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {print r, h}' "/proc/$server/status")
related_p=$(curl -s -o /dev/null -w '%{time_total}' "$API/articles/$older/related")

secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
ms() { python3 -c "print(f'{($2 - $1) * 1000:.0f}')"; }
echo
echo "| measure | value |"
echo "|---|---|"
echo "| articles imported (bulk API, 4,000 per request) | $total |"
echo "| import | $(secs "$start" "$imported") s |"
echo "| index and every list built, after the import | $(python3 -c "print(f'{$build:.1f}')") s (seen $(secs "$imported" "$indexed") s after the import) |"
echo "| new article: its own list ready | $(ms "$published" "$own") ms after POST |"
echo "| new article: in an older article's list | $(ms "$published" "$joined") ms after POST |"
echo "| one GET /related afterwards | $(python3 -c "print(f'{$related_p * 1000:.1f}')") ms |"
echo "| server memory | RSS $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB |"
