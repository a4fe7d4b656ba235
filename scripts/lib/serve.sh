# Sourced by the scripts that test a real `spacectl serve`: starts it, reads the keys it
# bootstrapped, mints more through the account API, scans its log, and stops it on exit.
#
#   . "$root/scripts/lib/serve.sh"
#   serve_start [spacectl serve options...]   # default --store memory; sets the variables below
#   key="$(serve_mint_key NAME RATE_PER_MINUTE)"  # a space key with every scope
#   serve_check_log "$secret_value" ...      # fails if the log holds a token or a value
#   serve_stop                               # also run on EXIT
#
# After serve_start: SERVE_PID, SERVE_LOG (stdout and stderr of the server), SERVE_DATA
# (its data folder, removed on stop), and exported BASE_URL (http://HOST:PORT),
# ACCOUNT_KEY, SPACE_ID, SPACE_KEY from the data folder's bootstrap.json.
#
# Knobs: SPACECTL (the binary; $CARGO_TARGET_DIR (or target)/debug/spacectl, built here, by
# default), RUST_LOG
# (passed through to the server).

serve_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVE_PID=""
SERVE_LOG=""
SERVE_DATA=""

serve_python() {
    if [ -x "$serve_root/.venv/bin/python" ]; then
        "$serve_root/.venv/bin/python" "$@"
    else
        python3 "$@"
    fi
}

serve_start() {
    if [ -z "${SPACECTL:-}" ]; then
        (cd "$serve_root" && cargo build --quiet -p spacectl)
        SPACECTL="${CARGO_TARGET_DIR:-$serve_root/target}/debug/spacectl"
    fi
    local store_given=""
    case " $* " in *" --store "*) store_given=1 ;; esac
    SERVE_DATA="$(mktemp -d "${TMPDIR:-/tmp}/spacectl.XXXXXX")"
    SERVE_LOG="$SERVE_DATA/serve.log"
    if [ -n "$store_given" ]; then
        "$SPACECTL" serve --host 127.0.0.1 --port 0 --data "$SERVE_DATA" "$@" >"$SERVE_LOG" 2>&1 &
    else
        "$SPACECTL" serve --host 127.0.0.1 --port 0 --data "$SERVE_DATA" --store memory "$@" >"$SERVE_LOG" 2>&1 &
    fi
    SERVE_PID=$!
    BASE_URL=""
    for _ in $(seq 1 300); do
        BASE_URL="$(sed -n 's#^Space API listening on \(http://[^/]*\)/.*#\1#p' "$SERVE_LOG")"
        [ -n "$BASE_URL" ] && break
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$BASE_URL" ]; then
        echo "spacectl serve did not start:" >&2
        cat "$SERVE_LOG" >&2
        return 1
    fi
    field() { serve_python -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$SERVE_DATA/bootstrap.json" "$1"; }
    ACCOUNT_KEY="$(field account_key)"
    SPACE_ID="$(field space_id)"
    SPACE_KEY="$(field space_key)"
    export BASE_URL ACCOUNT_KEY SPACE_ID SPACE_KEY
}

# serve_mint_key NAME RATE: a new all-scopes key on the bootstrapped Space, minted with
# the account key (RATE requests per minute, at most the account API's 100 000).
serve_mint_key() {
    serve_python - "$BASE_URL" "$ACCOUNT_KEY" "$SPACE_ID" "$1" "$2" <<'PY'
import json, sys, urllib.request

base, account_key, space, name, rate = sys.argv[1:]
headers = {"Authorization": f"Bearer {account_key}", "Content-Type": "application/json"}

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/functions/v1/account-api{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)

# The scopes the API offers, from its own schema of a mint request.
spec = json.load(urllib.request.urlopen(f"{base}/functions/v1/space-api/openapi.json"))
mint = spec["paths"]["/functions/v1/account-api/spaces/{space}/keys"]["post"]
def resolve(schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema
body = resolve(mint["requestBody"]["content"]["application/json"]["schema"])
scopes = resolve(body["properties"]["scopes"]["items"])["enum"]
key = call("POST", f"/spaces/{space}/keys", {"name": name, "scopes": scopes, "rate_limit_per_minute": int(rate)})
print(key["token"])
PY
}

# serve_check_log [VALUE...]: fails when the server's log holds a full token
# (`wks_live_…`/`wka_live_…`) or any of the given secret values.
serve_check_log() {
    serve_python - "$SERVE_LOG" "$@" <<'PY'
import re, sys

log_path, *values = sys.argv[1:]
text = open(log_path, encoding="utf-8", errors="replace").read()
# The startup banner prints the bootstrap keys once, to the terminal, by design: skip it.
lines = [l for l in text.splitlines() if not re.match(r"^\s+(account key|space key):", l)]
body = "\n".join(lines)
problems = [f"a token: {m[:14]}…" for m in re.findall(r"wk[as]_live_[0-9A-Za-z]{20,}", body)]
problems += [f"a secret value ({v[:4]}…)" for v in values if v and v in body]
if problems:
    sys.exit(f"the server log {log_path} holds " + "; ".join(sorted(set(problems))))
print(f"log scan: {len(lines)} lines, no token, none of {len(values)} secret value(s)")
PY
}

serve_stop() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=""
    fi
    if [ -n "$SERVE_DATA" ]; then
        rm -rf "$SERVE_DATA"
        SERVE_DATA=""
    fi
}
trap serve_stop EXIT
