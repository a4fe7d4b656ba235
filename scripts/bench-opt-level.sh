#!/usr/bin/env bash
# Which opt-level the release profile should use: builds the servers at each level into
# target/opt-<level>/ (the profile otherwise unchanged: fat LTO, one codegen unit, strip,
# panic=abort), runs scripts/bench.sh against each build, packages space-mcp (the largest
# function) as an arm64 Lambda zip at each level, and prints one table:
#   scripts/bench-opt-level.sh            # OPT_LEVELS="3 s z"
#
# Not part of `make bench` (three full release builds take long); the figures and the
# choice are in docs/benchmarks.md. Knobs: OPT_LEVELS, SKIP_ARM64=1, and bench.sh's own.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
levels=(${OPT_LEVELS:-3 s z})
summary="$root/target/bench/opt-level.md"
mkdir -p "$root/target/bench"

if [ "${SKIP_ARM64:-0}" != 1 ]; then
    rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
fi

rows=()
for level in "${levels[@]}"; do
    target="$root/target/opt-$level"
    echo "bench-opt-level: opt-level=$level into $target" >&2
    CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_OPT_LEVEL="$level" BENCH_README=0 "$root/scripts/bench.sh"
    zip="—"
    if [ "${SKIP_ARM64:-0}" != 1 ]; then
        CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_OPT_LEVEL="$level" \
            "$root/scripts/cargo-lambda.sh" build --release --arm64 --output-format zip --bin space-mcp --lambda-dir "$target/lambda"
        zip="$(stat -c %s "$target/lambda/space-mcp/bootstrap.zip")"
    fi
    rows+=("$level|$(stat -c %s "$target/release/spacectl")|$zip|$target/bench/table.md")
done

python3 - "$summary" "${rows[@]}" <<'PY'
import re, sys
summary, rows = sys.argv[1], sys.argv[2:]
mb = lambda text: f"{int(text) / 1e6:.2f} MB" if text.isdigit() else text
lines = [
    "| opt-level | spacectl (x86_64) | space-mcp arm64 zip | auth GET req/s (× bare) | MCP calls/s | criterion auth GET (redb) |",
    "|---|---:|---:|---:|---:|---:|",
]
for row in rows:
    level, binary, zip_bytes, table = row.split("|")
    text = open(table).read()
    cell = lambda label: re.search(r"\| " + re.escape(label) + r"[^|]*\| ([\d,]+) \|", text).group(1)
    ratio = re.search(r"Authenticated GET / bare: \*\*([\d.]+)×", text).group(1)
    criterion = re.search(r"`authenticated_get/embedded_redb_file` \| ([^|]+) \|", text)
    lines.append(
        f"| {level} | {mb(binary)} | {mb(zip_bytes)} | {cell('`spacectl serve` authenticated')} ({ratio}×) "
        f"| {cell('`spacectl serve` MCP')} | {criterion.group(1).strip() if criterion else '—'} |"
    )
open(summary, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
