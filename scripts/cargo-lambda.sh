#!/usr/bin/env bash
# `cargo lambda …` the way every Lambda build here runs it (`make build`, the benches, the
# deploy test): cargo-lambda from PyPI in .venv (installed if missing), and the link flag
# below for the Lambda target triples.
#
# Lambda binaries link as fixed-address executables (-no-pie, what Go builds by default).
# A position-independent binary makes the loader patch every pointer of its static data
# before `main` runs: 37,000 relocations in contacts, 84,000 in space-mcp, most of a cold
# start (perf). The flag goes to the target triples only; cargo-lambda always passes
# --target, so proc macros and build scripts (shared objects, built for the host) keep
# their usual linking. Linking as a fixed-address binary gives up ASLR for the binary's
# own code and data; the stack, heap and shared libraries stay randomized.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/cargo-lambda" ]; then
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi
export PATH="$venv/bin:$PATH"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-no-pie"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-no-pie"
# The binary itself rather than `cargo lambda`: no cargo process in between, so a caller
# that stops a `watch` stops cargo-lambda.
exec "$venv/bin/cargo-lambda" lambda "$@"
