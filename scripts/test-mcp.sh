#!/usr/bin/env bash
# The MCP server against the official client SDKs: Python (both protocol eras), TypeScript,
# and MCP Inspector's CLI, all talking to a real `spacectl serve`.
# Installs what it needs: `mcp` into .venv, the npm packages into tests/mcp/js/node_modules.
# Then scans the server's log: no token may be in it (scripts/lib/serve.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
js="$root/tests/mcp/js"

if ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check mcp
fi
if [ ! -d "$js/node_modules/@modelcontextprotocol/sdk" ] || [ "$js/package.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm install --silent --no-package-lock && touch node_modules)
fi

. "$root/scripts/lib/serve.sh"
serve_start
base="$BASE_URL"

"$venv/bin/python" tests/mcp/python_sdk.py
(cd "$js" && node typescript_sdk.mjs)

inspector() {
    (cd "$js" && PATH="$js/node_modules/.bin:$PATH" mcp-inspector --cli "$base/functions/v1/space-mcp" \
        --transport http --header "Authorization: Bearer $SPACE_KEY" "$@")
}
listed="$(inspector --method tools/list)"
echo "$listed" | "$venv/bin/python" -c '
import json, sys
tools = [t["name"] for t in json.load(sys.stdin)["tools"]]
assert "write_contacts" in tools and "read_tasks" in tools, tools
print(f"inspector: tools/list gave {len(tools)} tools")'
called="$(inspector --method tools/call --tool-name contacts_create --tool-arg name=Inspector --tool-arg email=inspector@example.com)"
echo "$called" | "$venv/bin/python" -c '
import json, sys
result = json.load(sys.stdin)
assert not result.get("isError"), result
assert result["structuredContent"]["email"] == "inspector@example.com", result
print("inspector: tools/call created", result["structuredContent"]["id"])'

# Every token the run used went through the server: none may be in its log.
serve_check_log
