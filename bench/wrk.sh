# Shared by the bench scripts (sourced, not run). Needs CONNECTIONS and
# DURATION set.

# Runs wrk with these arguments and prints its summary as
# `requests/s|p50|p99|errors` (errors: non-2xx answers plus socket errors).
measure() {
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}' <<<"$out")
  echo "$rps|$p50|$p99|$errors"
}
