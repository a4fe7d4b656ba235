#!/usr/bin/env bash
# Soak: mixed reads and writes of contacts and tasks from many concurrent clients, each
# with its own key, against a real `spacectl serve` (scripts/soak_client.py):
#   scripts/soak.sh            # make soak
#
# 1. the embedded store (a redb file) for SOAK_SECONDS (60) with SOAK_CLIENTS (32), then
# 2. DynamoDB on moto (scripts/with-moto.sh) for SOAK_DYNAMODB_SECONDS (15) with
#    SOAK_DYNAMODB_CLIENTS (8): moto answers a few dozen requests a second, so more
#    clients would only measure its queue;
# on loopback. Fails on any 5xx or connection error.
# Reports requests, throughput, status classes, p50/p99 and the server's VmRSS at the
# start, halfway and at the end of the load; prints a markdown table and writes it into
# docs/reliability.md between `<!-- soak:start -->` and `<!-- soak:end -->` when both markers exist.
# Figures go to target/soak/. The server's log is scanned for tokens afterwards.
#
# The release build by default (`cargo build --release -p spacectl`; a no-op when it is
# current); SOAK_PROFILE=debug for the debug build, or SPACECTL=path for any binary.
# Installs aiohttp (pinned) into .venv when missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ -z "${SOAK_IN_MOTO:-}" ]; then
    exec env SOAK_IN_MOTO=1 "$root/scripts/with-moto.sh" "$0" "$@"
fi

venv="$root/.venv"
seconds="${SOAK_SECONDS:-60}"
dynamodb_seconds="${SOAK_DYNAMODB_SECONDS:-15}"
clients="${SOAK_CLIENTS:-32}"
dynamodb_clients="${SOAK_DYNAMODB_CLIENTS:-8}"
out="${CARGO_TARGET_DIR:-$root/target}/soak"
say() { echo "soak: $*" >&2; }

if ! "$venv/bin/python" -c 'import aiohttp' 2>/dev/null; then
    say "installing aiohttp into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiohttp==3.14.5'
fi

if [ -z "${SPACECTL:-}" ]; then
    if [ "${SOAK_PROFILE:-release}" = debug ]; then
        cargo build --quiet -p spacectl
        SPACECTL="$root/target/debug/spacectl"
    else
        say "building spacectl (release; a while when it is not current)"
        cargo build --quiet --release -p spacectl
        SPACECTL="$root/target/release/spacectl"
    fi
fi
export SPACECTL

. "$root/scripts/lib/serve.sh"
mkdir -p "$out"

# phase NAME SECONDS CLIENTS [spacectl serve options...]
phase() {
    local name="$1" length="$2" clients="$3"
    shift 3
    serve_start "$@"
    local keys="$out/$name.keys"
    : >"$keys"
    chmod 600 "$keys"
    for n in $(seq 1 "$clients"); do
        serve_mint_key "soak-$n" 100000 >>"$keys"
    done
    say "$name: $clients clients for $length s against $BASE_URL (pid $SERVE_PID)"
    "$venv/bin/python" "$root/scripts/soak_client.py" --base "$BASE_URL" --keys "$keys" \
        --seconds "$length" --pid "$SERVE_PID" --out "$out/$name.json" >&2
    rm -f "$keys"
    serve_check_log >&2
    serve_stop
}

phase embedded "$seconds" "$clients" --store embedded
phase dynamodb "$dynamodb_seconds" "$dynamodb_clients" --store dynamodb --create-table --table "soak-$(date +%s)-$$"

"$venv/bin/python" - "$out" "$root/docs/reliability.md" "$SPACECTL" <<'PY'
import json, os, re, sys

out, readme, binary = sys.argv[1:]
profile = "release" if "/release/" in binary else "debug" if "/debug/" in binary else os.path.basename(binary)
rows = [("embedded (redb file)", "embedded"), ("DynamoDB (moto)", "dynamodb")]
mib = lambda kib: f"{kib / 1024:.0f}"
lines = [
    f"`make soak`: concurrent clients, one key each, mixed contact and task reads and writes (list, search, "
    f"get, create, PATCH with If-Match, delete) against `spacectl serve` ({profile} build), loopback, "
    f"nproc {os.cpu_count()}.",
    "",
    "| store | clients | seconds | requests | requests/s | 5xx | 4xx | p50 | p99 | server RSS start → half → end (MiB) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]
failed = []
for label, name in rows:
    r = json.load(open(os.path.join(out, f"{name}.json")))
    lines.append(
        f"| {label} | {r['clients']} | {r['seconds']:.0f} | {r['requests']:,} | {r['throughput']:,.0f} | {r['server_errors']} | "
        f"{r['client_errors']} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
        f"{mib(r['rss_start_kib'])} → {mib(r['rss_half_kib'])} → {mib(r['rss_end_kib'])} |"
    )
    if r["server_errors"] or r["connection_errors"]:
        failed.append(f"{name}: {r['server_errors']} 5xx, {r['connection_errors']} connection errors: {r['unexpected']}")
    elif r["unexpected"]:
        print(f"soak: {name}: unexpected answers: {r['unexpected']}", file=sys.stderr)
table = "\n".join(lines)
print(table)
open(os.path.join(out, "soak.md"), "w").write(table + "\n")
if not failed and os.path.exists(readme):
    text = open(readme).read()
    start, end = "<!-- soak:start -->", "<!-- soak:end -->"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: f"{start}\n{table}\n{end}", text, flags=re.S)
        open(readme, "w").write(text)
        print("soak: docs/reliability.md updated", file=sys.stderr)
if failed:
    sys.exit("soak failed: " + "; ".join(failed))
PY
