#!/usr/bin/env bash
# Offline checks of infra/ (the Terraform registry is unreachable here, so `terraform
# validate` cannot run):
#   scripts/check-infra.sh
#
# 1. installs into .venv what the deploy checks need, when missing: checkov, python-hcl2,
#    and cargo-lambda (tests/tests/api/deploy.rs builds and invokes a family with it);
# 2. terraform fmt -check -recursive infra;
# 3. checkov on infra/ with zero failed checks (skips only as `#checkov:skip=ID:reason`
#    next to the resource);
# 4. tests/infra/test_infra.py: every manifest function and route reaches Terraform through
#    for_each, least-privilege IAM (no function serving secret names can read a value).
# `make test` runs it before the cargo tests.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"

say() { echo "check-infra: $*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
missing=()
[ -x "$venv/bin/checkov" ] || missing+=(checkov)
"$venv/bin/python" -c 'import hcl2' 2>/dev/null || missing+=(python-hcl2)
[ -x "$venv/bin/cargo-lambda" ] || missing+=(cargo-lambda)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}"
fi

command -v terraform >/dev/null 2>&1 || { say "terraform is required (1.6 or newer)"; exit 1; }
# No CLI configuration: nothing to warn about, nothing to reach.
tf_config="$(mktemp "${TMPDIR:-/tmp}/terraformrc.XXXXXX")"
trap 'rm -f "$tf_config"' EXIT
export TF_CLI_CONFIG_FILE="$tf_config"

say "terraform fmt -check -recursive infra"
terraform fmt -check -recursive infra || { say "run: terraform fmt -recursive infra"; exit 1; }

say "checkov -d infra --framework terraform --skip-download"
"$venv/bin/checkov" -d infra --framework terraform --skip-download --compact --quiet

say "tests/infra/test_infra.py"
"$venv/bin/python" tests/infra/test_infra.py

say "ok"
