#!/usr/bin/env bash
# Load-tests `spacectl serve` against a bare axum handler in the same run, and runs the
# in-process criterion bench:
#   scripts/bench.sh
#
# 1. builds, in one release build, spacectl, space-bench's `bare` and `seed`, and the
#    criterion bench;
# 2. installs wrk if missing (Debian package);
# 3. seeds a temporary data folder with a high-limit space key (`seed`; the REST key
#    endpoint caps limits at 100 000/min, which wrk exceeds in seconds), starts
#    `spacectl serve --store embedded` on it and creates one contact;
# 4. starts `bare` (constant JSON on GET /), then runs `wrk -t2 -c32 -d10s --latency`
#    against bare `/` and the authenticated `GET /contacts/{id}`, each after a short
#    unmeasured warm-up, alternating, WRK_ROUNDS times: on a small shared machine one run
#    moves by ±15%, so the table reports each path's median and the median of the
#    per-round ratios (with their range);
# 5. MCP: creates 20 contacts, starts the official Python SDK's server over a SQLite copy of
#    them (bench/mcp/python_server.py; `mcp` into .venv if missing), and replays the Python
#    SDK client's own `tools/call contacts_list` request (bench/mcp/tools_call.lua) against
#    both, with the same wrk settings and rounds; a run where either answered an error fails;
# 6. stops the servers and runs the criterion bench (what `cargo bench -p space-bench`
#    runs, from the build of step 1);
# 7. prints a markdown table (requests/s, p99, the ratio, criterion means), and writes it
#    into docs/benchmarks.md between `<!-- bench:start -->` and `<!-- bench:end -->` when both
#    markers exist.
# Raw wrk and criterion output go to target/bench/. Servers are stopped on any exit.
#
# Knobs (environment): WRK_THREADS (2), WRK_CONNECTIONS (32), WRK_DURATION (10s),
# WRK_WARMUP (2s), WRK_ROUNDS (3), SKIP_CRITERION=1, BENCH_README=0 (print the table only), RUST_LOG for
# spacectl (its default: info, one log line per request, written to a file in the temporary
# folder).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

threads="${WRK_THREADS:-2}"
connections="${WRK_CONNECTIONS:-32}"
duration="${WRK_DURATION:-10s}"
warmup="${WRK_WARMUP:-2s}"
rounds="${WRK_ROUNDS:-3}"
out="${CARGO_TARGET_DIR:-$root/target}/bench"
base="/functions/v1/space-api"

say() { echo "bench: $*" >&2; }

# --- build -----------------------------------------------------------------------------
# One release build of everything (the servers and the criterion bench): one fat-LTO pass
# instead of two (`cargo bench` alone would build the `bench` profile, which differs from
# release only in keeping symbols). The artifacts are then run directly, so edits made to
# the tree while the run goes on cannot trigger a rebuild in the middle of it.
venv="$root/.venv"
for tool in jq curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 1; }
done
mkdir -p "$out"
say "building release binaries and the criterion bench (fat LTO: this takes a while)"
cargo build --release -p spacectl -p space-bench --bins --benches --message-format=json-render-diagnostics >"$out/build.jsonl"
artifact() { # artifact KIND NAME: the executable cargo built for that target (`--benches` also
    # builds each bin as a bench harness: only bench targets may be test-profile builds)
    jq -r --arg kind "$1" --arg name "$2" \
        'select(.reason == "compiler-artifact" and .target.name == $name and (.target.kind | any(. == $kind))
                and .executable != null and (.profile.test == ($kind == "bench"))) | .executable' \
        "$out/build.jsonl" | tail -n1
}
spacectl="$(artifact bin spacectl)"
bare_bin="$(artifact bin bare)"
seed_bin="$(artifact bin seed)"
criterion_bins=("$(artifact bench authenticated_get)" "$(artifact bench mcp_tools_call)")
for binary in "$spacectl" "$bare_bin" "$seed_bin" "${criterion_bins[@]}"; do
    [ -x "$binary" ] || { say "missing build artifact (see $out/build.jsonl)"; exit 1; }
done

# --- tools -----------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
fi

if ! "$venv/bin/python" -c 'import mcp, uvicorn' 2>/dev/null; then
    say "installing the MCP Python SDK into .venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check mcp uvicorn
fi

# --- servers ---------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/space-bench.XXXXXX")"
data="$work/data"
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    pids=()
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits for "... listening on http://HOST:PORT..." in a log; prints HOST:PORT.
listening_address() {
    local log="$1" pid="$2" address=""
    for _ in $(seq 1 200); do
        address="$(grep -m1 -oE 'listening on http://[0-9.]+:[0-9]+' "$log" 2>/dev/null | sed 's|.*http://||' || true)"
        if [ -n "$address" ]; then
            echo "$address"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "server exited early:"; cat "$log" >&2; return 1
        fi
        sleep 0.05
    done
    say "server did not start:"; cat "$log" >&2; return 1
}

say "seeding $data"
"$seed_bin" "$data" >"$work/seed.json"
space_key="$(jq -r .space_key "$work/seed.json")"

# Port 0: the kernel picks a free port; the server prints the one it got.
"$spacectl" serve --data "$data" --store embedded --host 127.0.0.1 --port 0 >"$work/spacectl.log" 2>&1 &
pids+=("$!")
api="$(listening_address "$work/spacectl.log" "$!")"
say "spacectl serve on $api"

"$bare_bin" 0 >"$work/bare.log" 2>&1 &
pids+=("$!")
bare="$(listening_address "$work/bare.log" "$!")"
say "bare on $bare"

contact="$(curl -fsS -X POST "http://$api$base/contacts" \
    -H "Authorization: Bearer $space_key" -H 'Content-Type: application/json' \
    -d '{"name":"Ada","email":"ada@example.com"}')"
contact_id="$(jq -r .id <<<"$contact")"
contact_url="http://$api$base/contacts/$contact_id"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $space_key" "$contact_url")"
[ "$status" = 200 ] || { say "GET $contact_url answered $status"; exit 1; }
status="$(curl -s -o /dev/null -w '%{http_code}' "http://$bare/")"
[ "$status" = 200 ] || { say "bare GET / answered $status"; exit 1; }

# --- load ------------------------------------------------------------------------------
# run_wrk NAME ROUND URL [wrk args...]: unmeasured warm-up, then the measured run to
# target/bench/wrk-NAME-ROUND.txt.
run_wrk() {
    local name="$1" round="$2" url="$3"
    shift 3
    wrk -t"$threads" -c"$connections" -d"$warmup" "$@" "$url" >/dev/null
    say "wrk $name, round $round of $rounds: -t$threads -c$connections -d$duration $url"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "$@" "$url" | tee "$out/wrk-$name-$round.txt" >&2
}
rm -f "$out"/wrk-*.txt

for round in $(seq 1 "$rounds"); do
    run_wrk bare "$round" "http://$bare/"
    run_wrk authenticated-get "$round" "$contact_url" -H "Authorization: Bearer $space_key"
done

# --- MCP -------------------------------------------------------------------------------
for i in $(seq 2 20); do
    curl -fsS -o /dev/null -X POST "http://$api$base/contacts" \
        -H "Authorization: Bearer $space_key" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Contact $i\",\"email\":\"c$i@example.com\"}"
done
curl -fsS -H "Authorization: Bearer $space_key" "http://$api$base/contacts?limit=20" >"$work/contacts.json"
python_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" bench/mcp/python_server.py --port "$python_port" --db "$work/contacts.db" \
    --contacts "$work/contacts.json" >"$work/python-mcp.log" 2>&1 &
pids+=("$!")
python_mcp="http://127.0.0.1:$python_port/mcp"
for _ in $(seq 1 100); do
    curl -s -o /dev/null -X POST "$python_mcp" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { say "the Python MCP server exited:"; cat "$work/python-mcp.log" >&2; exit 1; }
    sleep 0.1
done
say "Python SDK MCP server on $python_mcp"
mcp_script=(-s "$root/bench/mcp/tools_call.lua")
for round in $(seq 1 "$rounds"); do
    run_wrk mcp-space "$round" "http://$api/functions/v1/space-mcp" "${mcp_script[@]}" -H "Authorization: Bearer $space_key"
    run_wrk mcp-python "$round" "$python_mcp" "${mcp_script[@]}"
done

cleanup
trap - EXIT

# --- criterion -------------------------------------------------------------------------
# What `cargo bench -p space-bench` runs, from the build above. Run from the workspace
# root, criterion keeps its data in target/criterion (or $CARGO_TARGET_DIR/criterion).
target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    say "criterion: authenticated_get, mcp_tools_call (as cargo bench -p space-bench)"
    : >"$out/criterion.txt"
    for binary in "${criterion_bins[@]}"; do
        CARGO_TARGET_DIR="$target_dir" "$binary" --bench 2>&1 | tee -a "$out/criterion.txt" >&2
    done
fi

# --- report ----------------------------------------------------------------------------
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: *//' || true)"
report="$(python3 - "$out" "$target_dir/criterion" "$(nproc)" "${cpu:-unknown CPU}" "$threads" "$connections" "$duration" "$rounds" <<'PY'
import json, os, re, statistics, sys

out, criterion, nproc, cpu, threads, connections, duration, rounds = sys.argv[1:]
rounds = int(rounds)

def seconds(value, unit):
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

def duration_text(s):
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"

def parse_run(name, round):
    text = open(os.path.join(out, f"wrk-{name}-{round}.txt")).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(r"Socket errors:.*", text)
    failures = re.search(r"MCP failures: (\d+)", text)
    if failures and int(failures.group(1)):
        sys.exit(f"wrk {name}: {failures.group(1)} MCP calls answered an error; the run measured failures")
    return rps, seconds(*p99.groups()), int(errors.group(1)) if errors else 0, socket.group(0) if socket else None

def parse(name):
    """Every round of NAME: (requests/s list, p99 list, non-2xx total, a socket error line)."""
    runs = [parse_run(name, round) for round in range(1, rounds + 1)]
    errors = sum(run[2] for run in runs)
    socket = next((run[3] for run in runs if run[3]), None)
    return [run[0] for run in runs], [run[1] for run in runs], errors, socket

def ratios(numerator, denominator):
    """Per-round ratios of requests/s (the two runs of a round ran back to back)."""
    return [a / b for a, b in zip(results[numerator][0], results[denominator][0])]

def spread(values, fmt):
    return f"{fmt(min(values))}–{fmt(max(values))}" if len(values) > 1 else fmt(values[0])

median = statistics.median

rows = [
    ("bare axum `GET /` (constant JSON)", "bare"),
    ("`spacectl serve` authenticated `GET /contacts/{id}` (embedded redb file)", "authenticated-get"),
]
results = {name: parse(name) for _, name in rows}
lines = [
    f"wrk -t{threads} -c{connections} -d{duration}, both servers up in the same run, loopback; "
    f"{rounds} rounds alternating the paths, medians (the range over rounds in brackets).",
    "",
    f"| path — {cpu}, nproc {nproc} | requests/s | p99 |",
    "|---|---:|---:|",
]
for label, name in rows:
    rps, p99, _, _ = results[name]
    lines.append(
        f"| {label} | {median(rps):,.0f} ({spread(rps, lambda v: f'{v:,.0f}')}) "
        f"| {duration_text(median(p99))} ({spread(p99, duration_text)}) |"
    )
get_ratios = ratios("authenticated-get", "bare")
lines += ["", f"Authenticated GET / bare: **{median(get_ratios):.2f}×** the requests/s "
          f"(rounds: {', '.join(f'{r:.2f}' for r in get_ratios)}; target ≥ 0.5×), "
          f"p99 {duration_text(median(results['authenticated-get'][1]))} (target < 2 ms)."]
mcp_rows = [
    ("`spacectl serve` MCP `tools/call contacts_list` (key, scopes, rate limit, redb)", "mcp-space"),
    ("official Python SDK server, same tool (stateless, JSON, SQLite, no auth)", "mcp-python"),
]
results.update({name: parse(name) for _, name in mcp_rows})
lines += ["", "| MCP, 20 contacts per call, the Python SDK client's own request replayed | calls/s | p99 |", "|---|---:|---:|"]
for label, name in mcp_rows:
    rps, p99, _, _ = results[name]
    lines.append(
        f"| {label} | {median(rps):,.0f} ({spread(rps, lambda v: f'{v:,.0f}')}) "
        f"| {duration_text(median(p99))} ({spread(p99, duration_text)}) |"
    )
mcp_ratios = ratios("mcp-space", "mcp-python")
lines += ["", f"MCP tools/call, Space API / Python SDK: **{median(mcp_ratios):.1f}×** the calls/s "
          f"(rounds: {', '.join(f'{r:.1f}' for r in mcp_ratios)}; target ≥ 15×)."]
for label, name in rows + mcp_rows:
    _, _, errors, socket = results[name]
    if errors:
        lines.append(f"**Warning:** {label}: {errors} non-2xx answers.")
    if socket:
        lines.append(f"**Warning:** {label}: {socket}.")

benches = [
    "authenticated_get/embedded_in_memory",
    "authenticated_get/embedded_redb_file",
    "authenticated_get/unauthenticated_404",
    "mcp/tools_call_contacts_list_20",
]
found = [(b, os.path.join(criterion, b, "new", "estimates.json")) for b in benches]
found = [(b, p) for b, p in found if os.path.exists(p)]
if found:
    lines += ["", "| criterion, in process (`oneshot`, no socket) | mean | ±95% CI |", "|---|---:|---:|"]
    for bench, path in found:
        mean = json.load(open(path))["mean"]
        ci = mean["confidence_interval"]
        half = (ci["upper_bound"] - ci["lower_bound"]) / 2
        lines.append(f"| `{bench}` | {duration_text(mean['point_estimate'] / 1e9)} | {duration_text(half / 1e9)} |")
print("\n".join(lines))
PY
)"

echo
echo "$report"
echo "$report" >"$out/table.md"

readme="$root/docs/benchmarks.md"
if [ "${BENCH_README:-1}" != 0 ] && [ -f "$readme" ] && grep -q '<!-- bench:start -->' "$readme" && grep -q '<!-- bench:end -->' "$readme"; then
    python3 - "$readme" "$out/table.md" <<'PY'
import re, sys
readme, table = sys.argv[1], open(sys.argv[2]).read().strip()
text = open(readme).read()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
i, j = text.index(start) + len(start), text.index(end)
if i > j:
    sys.exit("docs/benchmarks.md: bench:end comes before bench:start")
open(readme, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
    say "table written into docs/benchmarks.md"
else
    say "no docs/benchmarks.md with bench markers: table printed only (also in target/bench/table.md)"
fi
