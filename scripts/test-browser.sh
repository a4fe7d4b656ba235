#!/usr/bin/env bash
# The README's page-with-a-form walkthrough in a real browser: Debian's headless Chromium,
# driven by playwright-core, against a real `spacectl serve` (tests/browser).
# Installs what it needs: Debian's `chromium` when /usr/bin/chromium is missing (apt-get,
# as root or through passwordless sudo) and the npm packages into tests/browser/node_modules.
# Then scans the server's log: no token may be in it (scripts/lib/serve.sh).
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

. "$root/scripts/lib/serve.sh"
serve_start

(cd "$js" && node --test)
serve_check_log
