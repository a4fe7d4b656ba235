#!/usr/bin/env bash
# Recurrence expansion under attack, against `spacectl serve` (release build, embedded store):
#   scripts/bench-calendar.sh
#
# 1. seeds a Space and stores 100 events with the densest rules the API accepts (hourly,
#    or daily at every hour, no end), each starting 50 years before the listed range, in
#    five time zones;
# 2. times `GET /calendar/events?from=&to=` one request at a time (wrk -c1), for a day, a
#    month and the widest range (366 days, truncated at 1,000 occurrences);
# 3. measures the p99 of `GET /contacts/{id}` idle, then while 20 connections keep asking
#    for the 366-day listing, and prints both and their ratio.
# Raw wrk output goes to target/bench/calendar-*.txt; the table is printed on stdout.
# Knobs: WRK_DURATION (10s), CALENDAR_EVENTS (100).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
duration="${WRK_DURATION:-10s}"
events="${CALENDAR_EVENTS:-100}"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
base="/functions/v1/space-api"
say() { echo "bench-calendar: $*" >&2; }

mkdir -p "$out"
command -v wrk >/dev/null 2>&1 || { say "wrk is required (apt-get install wrk; scripts/bench.sh installs it)"; exit 1; }
say "building spacectl and seed (release)"
# shellcheck source=scripts/bench-build.sh
source "$root/scripts/bench-build.sh"
release_bins calendar spacectl seed
spacectl="$(artifact spacectl)"
seed_bin="$(artifact seed)"

work="$(mktemp -d "${TMPDIR:-/tmp}/space-bench-calendar.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$seed_bin" "$work/data" >"$work/seed.json"
key="$(jq -r .space_key "$work/seed.json")"
"$spacectl" serve --data "$work/data" --store embedded --host 127.0.0.1 --port 0 >"$work/spacectl.log" 2>&1 &
pids+=("$!")
api=""
for _ in $(seq 1 200); do
    api="$(grep -m1 -oE 'listening on http://[0-9.]+:[0-9]+' "$work/spacectl.log" 2>/dev/null | sed 's|.*http://||' || true)"
    [ -n "$api" ] && break
    sleep 0.05
done
[ -n "$api" ] || { say "spacectl did not start"; cat "$work/spacectl.log" >&2; exit 1; }
auth=(-H "Authorization: Bearer $key")

post() { curl -fsS -o /dev/null -X POST "http://$api$base$1" "${auth[@]}" -H 'Content-Type: application/json' -d "$2"; }
zones=(UTC Europe/Berlin America/New_York Asia/Kolkata Australia/Lord_Howe)
every_hour="0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
say "storing $events events with hourly rules from 2026"
for n in $(seq 1 "$events"); do
    zone="${zones[$((n % ${#zones[@]}))]}"
    if [ $((n % 2)) = 0 ]; then rule="FREQ=HOURLY"; else rule="FREQ=DAILY;BYHOUR=$every_hour;BYMINUTE=$((n % 60))"; fi
    post /calendar/events "{\"title\":\"Load $n\",\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-01T00:30:00Z\",\"time_zone\":\"$zone\",\"recurrence\":\"$rule\"}"
done
contact_id="$(curl -fsS -X POST "http://$api$base/contacts" "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"name":"Ada","email":"ada@example.com"}' | jq -r .id)"
contact="http://$api$base/contacts/$contact_id"
range() { echo "http://$api$base/calendar/events?from=$1&to=$2"; }
day="$(range 2076-03-02T00:00:00Z 2076-03-03T00:00:00Z)"
month="$(range 2076-03-01T00:00:00Z 2076-04-01T00:00:00Z)"
year="$(range 2076-03-01T00:00:00Z 2077-03-01T00:00:00Z)"
for url in "$day" "$month" "$year"; do
    status="$(curl -s -o "$work/list.json" -w '%{http_code}' "${auth[@]}" "$url")"
    [ "$status" = 200 ] || { say "$url answered $status: $(cat "$work/list.json")"; exit 1; }
    say "$(jq '.data | length' "$work/list.json") occurrences, truncated $(jq .truncated "$work/list.json"): $url"
done

# wrk_p NAME PERCENTILE: the latency percentile line of a saved run, in ms.
wrk_p() {
    awk -v p="$2" '$1 == p"%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }' \
        "$out/calendar-$1.txt"
}
run() { local name="$1"; shift; wrk -d"$duration" --latency "$@" | tee "$out/calendar-$name.txt" >&2; }

for name in day month year; do
    run "list-$name" -t1 -c1 "${auth[@]}" "${!name}"
done
run contacts-idle -t1 -c4 "${auth[@]}" "$contact"
wrk -t2 -c20 -d"$((${duration%s} + 4))s" "${auth[@]}" "$year" >"$out/calendar-attack.txt" 2>&1 &
attack=$!
sleep 2
run contacts-attacked -t1 -c4 "${auth[@]}" "$contact"
wait "$attack"
grep -E "Requests/sec|Non-2xx" "$out/calendar-attack.txt" >&2 || true

idle="$(wrk_p contacts-idle 99)"
attacked="$(wrk_p contacts-attacked 99)"
echo "| measure | p50 | p99 |"
echo "|---|---|---|"
for name in day month year; do
    echo "| list, $events events, $name range, one at a time | $(wrk_p "list-$name" 50) ms | $(wrk_p "list-$name" 99) ms |"
done
echo "| GET /contacts/{id}, idle (4 connections) | $(wrk_p contacts-idle 50) ms | $idle ms |"
echo "| GET /contacts/{id}, 20 connections listing 366 days | $(wrk_p contacts-attacked 50) ms | $attacked ms |"
echo "p99 under attack / idle: $(awk -v a="$attacked" -v i="$idle" 'BEGIN { printf "%.2f", a / i }')x"
