#!/usr/bin/env bash
# A Python client generated from the OpenAPI document a real `spacectl serve` serves, with
# openapi-python-client (pinned, into .venv), then README.md's walkthrough driven through it
# (tests/client/walkthrough.py): a contact, a search, 401, 403 with a read-only key, 422, the
# overdue tasks and their PATCH with If-Match, an absolute feed URL.
#
# Fails unless the client has a function for every operation of the document. Prints, and
# writes to target/client/summary.json, how many operations and model classes it has.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
version="0.29.1"
out="${CARGO_TARGET_DIR:-$root/target}/client"

if [ "$("$venv/bin/openapi-python-client" --version 2>/dev/null | awk '{print $NF}')" != "$version" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    echo "test-client: installing openapi-python-client $version into $venv" >&2
    # checkov (scripts/check-infra.sh) shares the venv and needs packaging < 24.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$version" 'packaging>=23,<24'
fi

. "$root/scripts/lib/serve.sh"
serve_start

rm -rf "$out"
mkdir -p "$out"
"$venv/bin/python" - "$BASE_URL/functions/v1/space-api/openapi.json" "$out/openapi.json" <<'PY'
import sys, urllib.request

urllib.request.urlretrieve(sys.argv[1], sys.argv[2])
PY
# Warnings are allowed: the one operation whose answer is any media type (a media download,
# `*/*`) is generated without a parsed answer. Every operation must be there; checked below.
"$venv/bin/openapi-python-client" generate --path "$out/openapi.json" --output-path "$out/space_api_client" \
    --meta none >"$out/generate.txt" 2>&1 || { cat "$out/generate.txt" >&2; exit 1; }

"$venv/bin/python" - "$out/openapi.json" "$out/space_api_client" "$out/summary.json" <<'PY'
import json, pathlib, re, sys

spec, package, summary_path = json.load(open(sys.argv[1])), pathlib.Path(sys.argv[2]), sys.argv[3]
operations = {op["operationId"] for methods in spec["paths"].values() for op in methods.values()}
generated = {path.stem for path in (package / "api").rglob("*.py") if path.name != "__init__.py"}
missing = sorted(operations - generated)
models = enums = 0
for path in (package / "models").glob("*.py"):
    text = path.read_text()
    models += len(re.findall(r"^@_attrs_define\s*\nclass ", text, re.M))
    enums += len(re.findall(r"^class \w+\((?:StrEnum|IntEnum|str, Enum|int, Enum)\)", text, re.M))
summary = {
    "operations": len(operations),
    "generated": len(generated & operations),
    "model_classes": models,
    "enum_classes": enums,
    "components": len(spec["components"]["schemas"]),
}
json.dump(summary, open(summary_path, "w"), indent=2)
print(
    f"client: {summary['generated']}/{summary['operations']} operations, {models} model classes, "
    f"{enums} enums, from {summary['components']} components"
)
if missing:
    sys.exit(f"the generated client lacks {len(missing)} operations: {', '.join(missing)}")
PY

PYTHONPATH="$out${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" "$root/tests/client/walkthrough.py" \
    "$BASE_URL" "$SPACE_KEY" "$ACCOUNT_KEY" "$SPACE_ID"
serve_check_log
