#!/usr/bin/env bash
# Conversations under load against `spacectl serve` (release build, embedded store, its own
# worker; bench/src/bin/messaging_load.rs):
#   scripts/bench-messaging.sh
#
# 1. campaign: one campaign to 10,000 contacts: time until every recipient is handled, the
#    server's memory meanwhile, addresses sent twice (the sandbox's own record);
# 2. kill: the same, with the server killed (SIGKILL) once half are sent and restarted;
# 3. inbound: 1,000 signed provider callbacks a second for 30 s from 1,000 senders: the
#    time from each callback's due time to its answer (its `message.received` is written
#    with it), and whether every message landed on its sender's thread.
# JSON per scenario goes to target/bench/messaging-<scenario>.json; the tables are printed.
# Knobs: MESSAGING_RECIPIENTS (10000), MESSAGING_RATE (1000), MESSAGING_SECONDS (30),
# MESSAGING_SENDERS (1000), MESSAGING_SCENARIOS ("campaign kill inbound").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
recipients="${MESSAGING_RECIPIENTS:-10000}"
rate="${MESSAGING_RATE:-1000}"
seconds="${MESSAGING_SECONDS:-30}"
senders="${MESSAGING_SENDERS:-1000}"
scenarios="${MESSAGING_SCENARIOS:-campaign kill inbound}"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
say() { echo "bench-messaging: $*" >&2; }

mkdir -p "$out"
say "building spacectl, seed and messaging-load (release)"
# shellcheck source=scripts/bench-build.sh
source "$root/scripts/bench-build.sh"
release_bins messaging spacectl seed messaging-load
spacectl="$(artifact spacectl)"
seed_bin="$(artifact seed)"
load_bin="$(artifact messaging-load)"

work="$(mktemp -d "${TMPDIR:-/tmp}/space-bench-messaging.XXXXXX")"
trap 'rm -rf "$work"' EXIT

for scenario in $scenarios; do
    data="$work/$scenario"
    "$seed_bin" "$data" >"$work/$scenario-seed.json"
    case "$scenario" in
        campaign) flags=(--scenario campaign --recipients "$recipients") ;;
        kill) flags=(--scenario campaign --recipients "$recipients" --kill) ;;
        inbound) flags=(--scenario inbound --rate "$rate" --seconds "$seconds" --senders "$senders") ;;
        *) say "unknown scenario $scenario"; exit 2 ;;
    esac
    say "$scenario"
    "$load_bin" --spacectl "$spacectl" --data "$data" --seed "$work/$scenario-seed.json" "${flags[@]}" \
        >"$out/messaging-$scenario.json"
done

for scenario in $scenarios; do
    file="$out/messaging-$scenario.json"
    case "$scenario" in
        campaign|kill)
            echo "| $scenario | recipients | handled in | recipients/s | sent | skipped | failed | addresses sent twice | RSS at launch → peak → end |"
            echo "|---|---|---|---|---|---|---|---|---|"
            jq -r --arg s "$scenario" '"| \($s) | \(.recipients) | \(.seconds_to_completed) s | \(.recipients_per_second) | \(.sandbox_records) | \(.totals.skipped_opted_out + .totals.skipped_no_address) | \(.totals.failed) | \(.addresses_sent_twice) | \(.rss_mib_at_launch) → \(.rss_mib_peak) → \(.rss_mib_end) MiB |"' "$file"
            ;;
        inbound)
            echo "| inbound | callbacks | accepted | offered/s | p50 | p99 | max | threads | misthreaded | message.received | RSS before → after |"
            echo "|---|---|---|---|---|---|---|---|---|---|---|"
            jq -r '"| \(.rate)/s × \(.seconds) s | \(.callbacks) | \(.accepted) | \(.offered_per_second) | \(.p50_ms) ms | \(.p99_ms) ms | \(.max_ms) ms | \(.threads) | \(.senders_misthreaded) | \(.message_received_events) | \(.rss_mib_before) → \(.rss_mib_after) MiB |"' "$file"
            ;;
    esac
    echo
done
