#!/usr/bin/env bash
# What happens after a change, under load, against `spacectl serve` (release build,
# embedded store, its own worker), with receivers in the load driver
# (bench/src/bin/webhook_load.rs):
#   scripts/bench-webhooks.sh
#
# 1. steady: 200 contacts/s for 60 s, three webhook endpoints; change answered → delivered;
# 2. outage: the same, while endpoint 0 answers 500 for 40 s and refuses connections for
#    10 s (10,000 pending retries): the healthy endpoints' latency meanwhile, and how long
#    after it recovers endpoint 0 has every event (the retry schedule's 5-minute step);
# 3. kill: the server is killed with SIGKILL halfway through and restarted on its data;
# 4. sse: 200 contacts/s for 30 s with one realtime stream open; change → SSE event.
# Each scenario starts on a fresh data folder. JSON per scenario goes to
# target/bench/webhooks-<scenario>.json; the table is printed on stdout.
# Knobs: WEBHOOK_RATE (200), WEBHOOK_SECONDS (60), WEBHOOK_SCENARIOS ("steady outage kill sse").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rate="${WEBHOOK_RATE:-200}"
seconds="${WEBHOOK_SECONDS:-60}"
scenarios="${WEBHOOK_SCENARIOS:-steady outage kill sse}"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
say() { echo "bench-webhooks: $*" >&2; }

mkdir -p "$out"
say "building spacectl, seed and webhook-load (release)"
# shellcheck source=scripts/bench-build.sh
source "$root/scripts/bench-build.sh"
release_bins webhooks spacectl seed webhook-load
spacectl="$(artifact spacectl)"
seed_bin="$(artifact seed)"
load_bin="$(artifact webhook-load)"

work="$(mktemp -d "${TMPDIR:-/tmp}/space-bench-webhooks.XXXXXX")"
trap 'rm -rf "$work"' EXIT

for scenario in $scenarios; do
    data="$work/$scenario"
    "$seed_bin" "$data" >"$work/$scenario-seed.json"
    key="$(jq -r .space_key "$work/$scenario-seed.json")"
    length="$seconds"
    [ "$scenario" = sse ] && length=$((seconds / 2))
    say "$scenario: $rate changes/s for ${length}s"
    "$load_bin" --spacectl "$spacectl" --data "$data" --key "$key" --scenario "$scenario" \
        --rate "$rate" --seconds "$length" >"$out/webhooks-$scenario.json"
done

ms() { jq -r "$1 | if . == null then \"-\" else (. * 10 | round / 10 | tostring) end" "$2"; }
echo "| scenario | endpoint | delivered / changes | lost | duplicate ids | p50 | p99 | max |"
echo "|---|---|---|---|---|---|---|---|"
for scenario in steady outage kill; do
    file="$out/webhooks-$scenario.json"
    [ -f "$file" ] || continue
    changes="$(jq .changes_committed "$file")"
    count="$(jq '.receivers | length' "$file")"
    for n in $(seq 0 $((count - 1))); do
        r=".receivers[$n]"
        echo "| $scenario | $n | $(jq "$r.delivered" "$file") / $changes | $(jq "$r.lost" "$file") | $(jq "$r.duplicates" "$file") | $(ms "$r.p50_ms" "$file") ms | $(ms "$r.p99_ms" "$file") ms | $(ms "$r.max_ms" "$file") ms |"
    done
    recovery="$(jq -r '.recovery_to_complete_s // empty' "$file")"
    [ -n "$recovery" ] && echo "| $scenario | 0 after recovery | complete $(printf '%.0f' "$recovery") s after it answered again | | | | | |"
    restart="$(jq -r '.restart_ms // empty' "$file")"
    [ -n "$restart" ] && echo "| $scenario | SIGKILL → answering again | $(printf '%.0f' "$restart") ms | | | | | |"
done
file="$out/webhooks-sse.json"
if [ -f "$file" ]; then
    echo "| sse | stream | $(jq .received "$file") / $(jq .changes_committed "$file") | $(jq .lost "$file") | - | $(ms .p50_ms "$file") ms | $(ms .p99_ms "$file") ms | $(ms .max_ms "$file") ms |"
fi
