#!/usr/bin/env bash
# Social publishing under load against `spacectl serve` (release build, embedded store,
# its own worker; bench/src/bin/social_load.rs):
#   scripts/bench-social.sh
#
# 1. steady: 1,000 posts across 20 accounts, scheduled over 5 minutes; how late each is
#    published, and that none is missed or published twice;
# 2. kill: the same, with the server killed (SIGKILL) halfway and restarted on its data.
# JSON per scenario goes to target/bench/social-<scenario>.json; the table is printed.
# Knobs: SOCIAL_POSTS (1000), SOCIAL_ACCOUNTS (20), SOCIAL_WINDOW (300 s),
# SOCIAL_SCENARIOS ("steady kill").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
posts="${SOCIAL_POSTS:-1000}"
accounts="${SOCIAL_ACCOUNTS:-20}"
window="${SOCIAL_WINDOW:-300}"
scenarios="${SOCIAL_SCENARIOS:-steady kill}"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
say() { echo "bench-social: $*" >&2; }

mkdir -p "$out"
say "building spacectl, seed and social-load (release)"
# shellcheck source=scripts/bench-build.sh
source "$root/scripts/bench-build.sh"
release_bins social spacectl seed social-load
spacectl="$(artifact spacectl)"
seed_bin="$(artifact seed)"
load_bin="$(artifact social-load)"

work="$(mktemp -d "${TMPDIR:-/tmp}/space-bench-social.XXXXXX")"
trap 'rm -rf "$work"' EXIT

for scenario in $scenarios; do
    data="$work/$scenario"
    "$seed_bin" "$data" >"$work/$scenario-seed.json"
    kill_flag=()
    [ "$scenario" = kill ] && kill_flag=(--kill)
    say "$scenario: $posts posts across $accounts accounts over ${window}s"
    "$load_bin" --spacectl "$spacectl" --data "$data" --seed "$work/$scenario-seed.json" \
        --posts "$posts" --accounts "$accounts" --window "$window" "${kill_flag[@]}" >"$out/social-$scenario.json"
done

echo "| scenario | published / posts | missed | duplicates | late p50 | p99 | max | within 2 s |"
echo "|---|---|---|---|---|---|---|---|"
for scenario in $scenarios; do
    file="$out/social-$scenario.json"
    jq -r --arg s "$scenario" '"| \($s) | \(.published) / \(.posts) | \(.missed) | \(.duplicates) | \(.lateness_p50_ms) ms | \(.lateness_p99_ms) ms | \(.lateness_max_ms) ms | \(.within_2s) |"' "$file"
done
