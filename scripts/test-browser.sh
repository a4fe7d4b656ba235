#!/usr/bin/env bash
# The README's page-with-a-form walkthrough in a real browser: Debian's headless Chromium,
# driven by playwright-core, against a real `spacectl serve` (tests/browser).
# Installs what it needs: Debian's `chromium` when /usr/bin/chromium is missing (apt-get,
# as root or through passwordless sudo) and the npm packages into tests/browser/node_modules.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
js="$root/tests/browser"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
    echo "test-browser: installing Debian's chromium" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d "$js/node_modules/playwright-core" ] || [ "$js/package.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm install --silent --no-package-lock && touch node_modules)
fi

cargo build --quiet -p spacectl
data="$(mktemp -d)"
log="$data/serve.log"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

"$root/target/debug/spacectl" serve --store memory --port 0 --data "$data" >"$log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 1 100); do
    base="$(sed -n 's#^Space API listening on \(http://[^/]*\)/.*#\1#p' "$log")"
    [ -n "$base" ] && break
    sleep 0.1
done
if [ -z "$base" ]; then
    echo "spacectl serve did not start:" >&2
    cat "$log" >&2
    exit 1
fi

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$data/bootstrap.json" "$1"; }
export BASE_URL="$base"
export SPACE_ID="$(field space_id)"
export SPACE_KEY="$(field space_key)"

(cd "$js" && node --test)
