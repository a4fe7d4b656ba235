#!/usr/bin/env bash
# schemathesis against a real `spacectl serve` and the OpenAPI document it serves: every
# operation (space API with an all-scopes key and account API with the owner's key, both at
# the highest per-key limit, public routes with none; tests/schemathesis/hooks.py picks the
# key), every phase (examples, coverage, fuzzing, stateful), bounded examples, every check
# (`--checks all`: data acceptance both ways, response schemas, statuses, headers, auth,
# use after free, …). Any failure fails the script.
#
# The document is the server: schema-valid data must be accepted and anything else
# refused. The only allowance is tests/schemathesis/expected.toml, one reviewed file of
# rules no JSON Schema states (a stale If-Match, a cursor the API did not issue, a value
# that names something that does not exist): it adds statuses to the positive data check
# of the operations it names, through a schemathesis config written for the run.
#
# Then scans the server's log: no token (`wks_live_…`/`wka_live_…`) and none of the
# secret values set during the run.
#
# Figures (operations, test cases, failures) go to target/schemathesis/summary.json and
# are printed; the full schemathesis JSON report sits beside it.
# Installs schemathesis (pinned) into .venv. Knobs: SCHEMATHESIS_MAX_EXAMPLES (10),
# SCHEMATHESIS_WORKERS (1: with two, Python 3.11's ast module, which hypothesis uses to
# describe a strategy, races between threads and fails a test case with a SystemError),
# SCHEMATHESIS_SEED.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
version="4.32.5"
out="${CARGO_TARGET_DIR:-$root/target}/schemathesis"

if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$version" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    echo "test-schemathesis: installing schemathesis $version into $venv" >&2
    # checkov (scripts/check-infra.sh) shares the venv and needs packaging < 24.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" 'packaging>=23,<24'
fi

. "$root/scripts/lib/serve.sh"
# The owner key and the space key at the highest per-key limit, so the run is not throttled.
serve_start --owner-rate-limit 100000
SPACE_KEY="$(serve_mint_key schemathesis 100000)"
export SPACE_KEY

# A secret value set through the account API before the run: it must never be logged.
secret_value="st-$(serve_python -c 'import secrets; print(secrets.token_urlsafe(24))')"
serve_python - "$BASE_URL" "$ACCOUNT_KEY" "$SPACE_ID" "$secret_value" <<'PY'
import json, sys, urllib.request

base, key, space, value = sys.argv[1:]
request = urllib.request.Request(
    f"{base}/functions/v1/account-api/spaces/{space}/secrets/SCHEMATHESIS_PROBE",
    data=json.dumps({"value": value}).encode(),
    method="PUT",
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
)
urllib.request.urlopen(request).read()
PY

rm -rf "$out"
mkdir -p "$out"

# expected.toml, checked against the served document, as a schemathesis config.
serve_python - "$BASE_URL" "$root/tests/schemathesis/expected.toml" "$out/schemathesis.toml" <<'PY'
import json, sys, tomllib, urllib.request

base, expected_path, config_path = sys.argv[1:]
spec = json.load(urllib.request.urlopen(f"{base}/functions/v1/space-api/openapi.json"))
operations = {}
for path, methods in spec["paths"].items():
    for method, operation in methods.items():
        operations[operation["operationId"]] = operation
# positive_data_acceptance's own defaults, which an override replaces.
defaults = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
allowed = {}
for rule in tomllib.load(open(expected_path, "rb"))["rejection"]:
    if not rule.get("reason"):
        sys.exit(f"expected.toml: every rejection gives its reason: {rule}")
    if "parameter" in rule:
        names = [
            name for name, operation in operations.items()
            if any(p["name"] == rule["parameter"] for p in operation.get("parameters", []))
        ]
    else:
        names = rule["operations"]
    unknown = [name for name in names if name not in operations]
    if unknown or not names:
        sys.exit(f"expected.toml: {rule} names no operation of the document ({unknown})")
    # The rule is the document's to state: in the operation's description, or the parameter's.
    for name in names:
        if "parameter" in rule:
            said = [p.get("description", "") for p in operations[name]["parameters"] if p["name"] == rule["parameter"]]
        else:
            said = [line for line in operations[name].get("description", "").split("\n\n") if not line.startswith("Requires the")]
        if not any(said):
            sys.exit(f"expected.toml: {name} may answer {rule['status']}, but its description does not say why")
    for name in names:
        allowed.setdefault(name, set()).add(str(rule["status"]))
with open(config_path, "w") as config:
    # Refusals negative_data_rejection does not list by default: a body over the route's
    # limit (413), and a stale If-Match, which a write checks before the body it carries (412).
    negative = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429", "5xx"]
    config.write(f"[checks.negative_data_rejection]\nexpected-statuses = {json.dumps(negative)}\n\n")
    for name, statuses in sorted(allowed.items()):
        config.write(f"[[operations]]\ninclude-operation-id = {json.dumps(name)}\n")
        config.write(f"checks.positive_data_acceptance.expected-statuses = {json.dumps(defaults + sorted(statuses))}\n\n")
print(f"expected.toml: {len(allowed)} operations may refuse schema-valid data with a stated status")
PY
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
status=0
PYTHONPATH="$root/tests/schemathesis${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks \
    "$venv/bin/schemathesis" --config-file "$out/schemathesis.toml" \
    run "$BASE_URL/functions/v1/space-api/openapi.json" \
    --url "$BASE_URL" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-10}" \
    --workers "${SCHEMATHESIS_WORKERS:-1}" \
    --request-timeout 30 \
    --report json --report-json-path "$out/report.json" \
    "${seed[@]}" >"$out/output.txt" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    cat "$out/output.txt" >&2
fi

serve_python - "$out/report.json" "$out/summary.json" "$status" <<'PY'
import json, sys

report_path, summary_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = json.load(open(report_path))
operations, cases = report["operations"], report["test_cases"]
summary = {
    "schemathesis": report["schemathesis_version"],
    "operations": operations["total"],
    "operations_tested": operations["tested"],
    "test_cases": cases["generated"],
    "failures": cases["unique_failures"] + len(report["errors"]),
    "seconds": round(report["running_time"], 1),
    "phases": {name: phase["status"] for name, phase in report["phases"].items()},
    "exit_code": status,
}
json.dump(summary, open(summary_path, "w"), indent=2)
print(
    f"schemathesis {summary['schemathesis']}: {summary['operations_tested']}/{summary['operations']} operations, "
    f"{summary['test_cases']} test cases, {summary['failures']} failures, {summary['seconds']} s"
)
ok = status == 0 and summary["failures"] == 0 and summary["operations_tested"] == summary["operations"]
sys.exit(0 if ok else 1)
PY

serve_check_log "$secret_value"
