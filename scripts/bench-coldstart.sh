#!/usr/bin/env bash
# Cold start, peak memory and package size of every Lambda function, next to a hello-world
# lambda_http + axum binary (tools/lambda-hello) built the same way:
#   scripts/bench-coldstart.sh
#
# 1. re-runs itself under scripts/with-moto.sh (the functions start against DynamoDB);
# 2. builds every function of infra/manifest.json and the hello world with
#    `cargo lambda build --profile lambda` (scripts/cargo-lambda.sh, as `make build`): x86_64 binaries to run here, arm64 zips to weigh
#    (into target/bench-lambda/, so `make build`'s target/lambda/ is left alone);
# 3. seeds a moto table through `spacectl serve --store dynamodb --create-table`: a space
#    key with a 100 000/min limit, 20 contacts, a task;
# 4. cold start: for each binary, COLDSTART_RUNS times, exec under a Runtime API emulator
#    (scripts/lambda_bench.py) with one queued API Gateway v2 event, until that first
#    response is posted — unauthenticated (401: init plus the engine, no store call) for
#    every function, and authenticated (200) for contacts;
# 5. memory: each binary answers MEMORY_REQUESTS invocations in one process, authenticated
#    where a key helps; peak RSS is the kernel's VmHWM;
# 6. prints a markdown table with the issue's targets (cold start ≤ 1.3× hello world,
#    arm64 zip ≤ 8 MB, peak memory ≤ 40 MB), writes it to target/bench/coldstart.md and
#    into docs/benchmarks.md between `<!-- coldstart:start -->` and `<!-- coldstart:end -->` when
#    both markers exist.
#
# Knobs (environment): COLDSTART_RUNS (20), MEMORY_REQUESTS (10000), SKIP_BUILD=1 (reuse
# target/bench-lambda/), SKIP_ARM64=1 (no cross build; no zip sizes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    exec "$root/scripts/with-moto.sh" "$0" "$@"
fi

runs="${COLDSTART_RUNS:-20}"
requests="${MEMORY_REQUESTS:-10000}"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench"
lambda="$target/bench-lambda"
venv="$root/.venv"
bench=("$venv/bin/python" "$root/scripts/lambda_bench.py")
mkdir -p "$out"

say() { echo "bench-coldstart: $*" >&2; }

functions=($(python3 -c 'import json; print(" ".join(f["binary"] for f in json.load(open("infra/manifest.json"))["functions"]))'))
say "functions: ${functions[*]}"

# --- build -----------------------------------------------------------------------------
cargo_lambda="$root/scripts/cargo-lambda.sh"
bins=()
for function in "${functions[@]}"; do bins+=(--bin "$function"); done
hello=(--manifest-path tools/lambda-hello/Cargo.toml)
# Its own workspace, its own target dir (cargo-lambda passes --target-dir on to `cargo
# metadata`, which refuses it: use the environment).
hello_target="$target/lambda-hello"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "lambda-profile builds, x86_64 (fat LTO: this takes a while)"
    "$cargo_lambda" build --profile lambda --x86-64 --lambda-dir "$lambda/x86_64" "${bins[@]}"
    CARGO_TARGET_DIR="$hello_target" "$cargo_lambda" build --profile lambda --x86-64 --lambda-dir "$lambda/x86_64" "${hello[@]}"
    if [ "${SKIP_ARM64:-0}" != 1 ]; then
        rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
        say "lambda-profile builds, arm64 zips"
        "$cargo_lambda" build --profile lambda --arm64 --output-format zip --lambda-dir "$lambda/arm64" "${bins[@]}"
        CARGO_TARGET_DIR="$hello_target" "$cargo_lambda" build --profile lambda --arm64 --output-format zip --lambda-dir "$lambda/arm64" "${hello[@]}"
    fi
fi
cargo build -q -p spacectl

# --- seed ------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/space-coldstart.XXXXXX")"
spacectl_pid=""
cleanup() {
    if [ -n "$spacectl_pid" ] && kill -0 "$spacectl_pid" 2>/dev/null; then
        kill "$spacectl_pid" 2>/dev/null || true
        wait "$spacectl_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The values Terraform would give; each function gets the ones its manifest entry lists.
export TABLE_NAME="space-coldstart-$$"
export CURSOR_SECRET="bench-cursor-secret"
export SECRETS_PREFIX="space-api/bench"
export MEDIA_BUCKET="space-coldstart-media-$$"
export MCP_ALLOWED_HOSTS="abc123def4.execute-api.us-east-1.amazonaws.com" # the fixture's Host

say "seeding table $TABLE_NAME"
RUST_LOG=warn "$target/debug/spacectl" serve --store dynamodb --create-table --data "$work/data" --host 127.0.0.1 --port 0 >"$work/spacectl.log" 2>&1 &
spacectl_pid=$!
api=""
for _ in $(seq 1 300); do
    api="$(grep -m1 -oE 'listening on http://[0-9.]+:[0-9]+' "$work/spacectl.log" 2>/dev/null | sed 's|.*http://||' || true)"
    [ -n "$api" ] && break
    kill -0 "$spacectl_pid" 2>/dev/null || { cat "$work/spacectl.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$api" ] || { say "spacectl did not start"; cat "$work/spacectl.log" >&2; exit 1; }

seed="$(python3 - "http://$api" "$work/data/bootstrap.json" <<'PY'
import json, sys, urllib.request
base, bootstrap = sys.argv[1], json.load(open(sys.argv[2]))

def call(method, path, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)

account = "/functions/v1/account-api/spaces/" + bootstrap["space_id"] + "/keys"
scopes = sorted({s for key in call("GET", account, bootstrap["account_key"])["data"] for s in key["scopes"]})
key = call("POST", account, bootstrap["account_key"],
           {"name": "coldstart bench", "scopes": scopes, "rate_limit_per_minute": 100000})["token"]
contacts = [call("POST", "/functions/v1/space-api/contacts", key, {"name": f"Contact {i}", "email": f"c{i}@example.com"})
            for i in range(20)]
call("POST", "/functions/v1/space-api/tasks", key, {"title": "Bench task"})
print(json.dumps({"space_key": key, "account_key": bootstrap["account_key"], "contact": contacts[0]["id"]}))
PY
)"
kill "$spacectl_pid" && wait "$spacectl_pid" 2>/dev/null || true
spacectl_pid=""
space_key="$(jq -r .space_key <<<"$seed")"
account_key="$(jq -r .account_key <<<"$seed")"
contact="$(jq -r .contact <<<"$seed")"

# --- measure ---------------------------------------------------------------------------
space="/functions/v1/space-api"
mcp_list='{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
mcp_headers=(--header "accept=application/json, text/event-stream" --header "mcp-protocol-version=2025-11-25")

# A request that reaches the function without a key (401) for its cold start.
anonymous_request() {
    case "$1" in
        space-mcp) echo "POST /functions/v1/space-mcp $mcp_list" ;;
        *) python3 - "$1" <<'PY'
import json, sys
function = next(f for f in json.load(open("infra/manifest.json"))["functions"] if f["name"] == sys.argv[1])
routes = [r.split(" ", 1) for r in function["routes"]]
method, path = next(((m, p) for m, p in routes if m == "GET" and "{" not in p), routes[0])
print(("POST" if method == "ANY" else method) + " " + path.replace("{", "x").replace("}", ""))
PY
        ;;
    esac
}

# Authenticated requests for the memory run, cycled.
memory_args() {
    case "$1" in
        contacts) echo "--request|GET $space/contacts/$contact|--request|GET $space/contacts?limit=10|--header|authorization=Bearer $space_key" ;;
        tasks) echo "--request|GET $space/tasks?limit=10|--header|authorization=Bearer $space_key" ;;
        secrets) echo "--request|GET $space/secrets|--header|authorization=Bearer $space_key" ;;
        account-api) echo "--request|GET /functions/v1/account-api/spaces|--header|authorization=Bearer $account_key" ;;
        space-mcp) echo "--request|POST /functions/v1/space-mcp $mcp_list|--header|authorization=Bearer $space_key|--header|accept=application/json, text/event-stream|--header|mcp-protocol-version=2025-11-25" ;;
        lambda-hello) echo "--request|GET /hello" ;;
        *) echo "--request|$(anonymous_request "$1")" ;;
    esac
}

# --env arguments for a function: its manifest env (RUST_LOG=info, as deployed).
function_env() {
    python3 - "$1" <<'PY'
import json, os, sys
entries = {f["name"]: f for f in json.load(open("infra/manifest.json"))["functions"]}
names = entries[sys.argv[1]]["env"] if sys.argv[1] in entries else []
print("|".join([f"--env|{name}={os.environ[name]}" for name in names] + ["--env|RUST_LOG=info"]))
PY
}

results="$work/results.jsonl"
: >"$results"
measure() {
    local name="$1" binary="$lambda/x86_64/$1/bootstrap" zip="$lambda/arm64/$1/bootstrap.zip"
    [ -x "$binary" ] || { say "missing $binary (run without SKIP_BUILD)"; exit 1; }
    local request
    if [ "$name" = lambda-hello ]; then request="GET /hello"; else request="$(anonymous_request "$name")"; fi
    say "$name: cold start x$runs ($request)"
    local extra=() env=()
    [ "$name" = space-mcp ] && extra=("${mcp_headers[@]}")
    IFS='|' read -r -a env <<<"$(function_env "$name")"
    local cold keyed="null" memory
    cold="$("${bench[@]}" coldstart --binary "$binary" --runs "$runs" --request "$request" "${extra[@]}" "${env[@]}")"
    if [ "$name" = contacts ]; then
        say "$name: authenticated cold start x$runs"
        keyed="$("${bench[@]}" coldstart --binary "$binary" --runs "$runs" --request "GET $space/contacts?limit=10" --header "authorization=Bearer $space_key" "${env[@]}")"
    fi
    local args
    IFS='|' read -r -a args <<<"$(memory_args "$name")"
    say "$name: $requests invocations in one process"
    memory="$("${bench[@]}" serve --binary "$binary" --requests "$requests" "${args[@]}" "${env[@]}")"
    local zip_bytes="null" binary_bytes
    # With SKIP_ARM64 a zip left by an earlier build is not this code's: leave it out.
    [ -f "$zip" ] && [ "${SKIP_ARM64:-0}" != 1 ] && zip_bytes="$(stat -c %s "$zip")"
    binary_bytes="$(stat -c %s "$binary")"
    jq -c -n --arg name "$name" --argjson cold "$cold" --argjson keyed "$keyed" --argjson memory "$memory" \
        --argjson zip "$zip_bytes" --argjson binary "$binary_bytes" \
        '{name: $name, cold: $cold, keyed: $keyed, memory: $memory, zip: $zip, binary: $binary}' >>"$results"
}

measure lambda-hello
for function in "${functions[@]}"; do measure "$function"; done

# --- report ----------------------------------------------------------------------------
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: *//' || true)"
report="$(python3 - "$results" "$runs" "$requests" "${cpu:-unknown CPU}" "$(nproc)" <<'PY'
import json, sys
path, runs, requests, cpu, nproc = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
hello = rows[0]
base = hello["cold"]["median_ms"]
mb = lambda n: f"{n / 1e6:.2f} MB" if n is not None else "—"
ok = lambda good: "✓" if good else "✗"
lines = [
    f"Cold start = exec to the first response posted to a Runtime API emulator (median of {runs}; min–p90), "
    f"x86_64 builds (`lambda` profile), DynamoDB on moto over loopback; memory = peak RSS over {int(requests):,} invocations "
    f"in one process. {cpu}, nproc {nproc}.",
    "",
    "| binary | cold start, no key (401) | × hello | peak RSS | answers | arm64 zip | x86_64 binary |",
    "|---|---:|---:|---:|---|---:|---:|",
]
for row in rows:
    cold, memory = row["cold"], row["memory"]
    ratio = cold["median_ms"] / base
    answers = ", ".join(f"{k}×{v}" for k, v in sorted(memory["statuses"].items()))
    is_hello = row["name"] == "lambda-hello"
    lines.append(
        f"| `{row['name']}` | {cold['median_ms']:.1f} ms ({cold['min_ms']:.1f}–{cold['p90_ms']:.1f}) "
        f"| {'—' if is_hello else f'{ratio:.2f}× ' + ok(ratio <= 1.3)} "
        f"| {memory['peak_rss_mb']:.1f} MB {'' if is_hello else ok(memory['peak_rss_mb'] <= 40)} | {answers} "
        f"| {mb(row['zip'])} {'' if is_hello or row['zip'] is None else ok(row['zip'] <= 8e6)} | {mb(row['binary'])} |"
    )
for row in rows:
    if row["keyed"]:
        keyed = row["keyed"]
        lines += ["", f"`{row['name']}` with a key (first invocation reads the key, counts the rate and lists): "
                      f"{keyed['median_ms']:.1f} ms ({keyed['min_ms']:.1f}–{keyed['p90_ms']:.1f}), "
                      f"{keyed['median_ms'] / base:.2f}× hello, answers {', '.join(keyed['statuses'])}."]
lines += ["", "Targets: cold start ≤ 1.3× hello world, arm64 zip ≤ 8 MB, peak RSS ≤ 40 MB."]
print("\n".join(lines))
PY
)"

echo
echo "$report"
echo "$report" >"$out/coldstart.md"
cp "$results" "$out/coldstart.jsonl"

readme="$root/docs/benchmarks.md"
if grep -q '<!-- coldstart:start -->' "$readme" 2>/dev/null && grep -q '<!-- coldstart:end -->' "$readme"; then
    python3 - "$readme" "$out/coldstart.md" <<'PY'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read().strip()
text = open(readme).read()
start, end = "<!-- coldstart:start -->", "<!-- coldstart:end -->"
i, j = text.index(start) + len(start), text.index(end)
if i > j:
    sys.exit("docs/benchmarks.md: coldstart:end comes before coldstart:start")
open(readme, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
    say "table written into docs/benchmarks.md"
else
    say "no coldstart markers in docs/benchmarks.md: table in target/bench/coldstart.md"
fi
