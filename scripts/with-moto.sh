#!/usr/bin/env bash
# Runs a command against a throwaway moto server (DynamoDB, Secrets Manager, ...):
#   scripts/with-moto.sh cargo test -p space-store
# Installs moto[server] (and standardwebhooks, for the webhook tests' receiver) into .venv
# at the repo root on first use, starts it on free loopback ports (MOTO_SHARDS servers,
# default 3), points the AWS SDKs at the first through the environment and lists them all
# in MOTO_DYNAMODB_ENDPOINTS, and always stops them.
# Exits with the command's status.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 <command...>" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

if [ ! -x "$venv/bin/moto_server" ]; then
    echo "with-moto: installing moto[server] into $venv" >&2
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
# The webhook tests' receiver verifies signatures with the reference library.
if ! "$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    echo "with-moto: installing standardwebhooks into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check standardwebhooks
fi

# moto answers one request at a time (scripts/moto_server.py): the DynamoDB tests' tables
# are dealt out among several servers (MOTO_DYNAMODB_ENDPOINTS), so one test's burst holds
# up only the tests on its server. The first server also serves every other AWS API.
shards="${MOTO_SHARDS:-3}"
moto_pids=()
logs=()
urls=()

cleanup() {
    for pid in "${moto_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -f "${logs[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 "$shards"); do
    port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    log="$(mktemp "${TMPDIR:-/tmp}/moto.XXXXXX.log")"
    logs+=("$log")
    "$venv/bin/python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    moto_pids+=("$!")
    urls+=("http://127.0.0.1:$port")
done

for index in "${!urls[@]}"; do
    url="${urls[$index]}"
    ready=""
    for _ in $(seq 1 150); do
        if ! kill -0 "${moto_pids[$index]}" 2>/dev/null; then
            break
        fi
        if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url/moto-api/" 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.2
    done
    if [ -z "$ready" ]; then
        echo "with-moto: moto_server did not become ready on $url; its log:" >&2
        cat "${logs[$index]}" >&2
        exit 1
    fi
done

url="${urls[0]}"
export MOTO_DYNAMODB_ENDPOINTS="$(IFS=,; echo "${urls[*]}")"
export AWS_ENDPOINT_URL="$url"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE

set +e
"$@"
status=$?
set -e
exit "$status"
