#!/usr/bin/env bash
# The purge of a deleted Space (bench/benches/purge.rs), from `DELETE /spaces/{space}` to
# the Space being gone, through the app and the worker:
#   scripts/bench-purge.sh
#
# 1. the embedded store in a file (as `spacectl serve` runs it), PURGE_ITEMS items (100,000);
# 2. DynamoDB and S3 on moto (scripts/with-moto.sh), PURGE_ITEMS_DYNAMODB items (5,000):
#    moto is a Python stand-in, so only its order of magnitude means anything.
# Each is PURGE_ROUNDS rounds (3) on a fresh store; the median round is the figure. Raw
# output goes to target/bench/purge-*.txt; the two median rows are printed on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
mkdir -p "$out"
say() { echo "bench-purge: $*" >&2; }

say "embedded store, ${PURGE_ITEMS:-100000} items"
cargo bench -p space-bench --bench purge | tee "$out/purge-embedded.txt" >&2
say "DynamoDB and S3 on moto, ${PURGE_ITEMS_DYNAMODB:-5000} items"
PURGE_ITEMS="${PURGE_ITEMS_DYNAMODB:-5000}" scripts/with-moto.sh cargo bench -p space-bench --bench purge \
    | tee "$out/purge-dynamodb.txt" >&2

echo "| store | items | purge (median of ${PURGE_ROUNDS:-3}) | rate |"
echo "|---|---:|---:|---:|"
grep -h '^| ' "$out/purge-embedded.txt" "$out/purge-dynamodb.txt"
