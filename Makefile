# The Space API. `make run` serves everything locally; `make test` runs every test,
# installing what the tests need (moto for DynamoDB and Secrets Manager) into .venv.

CARGO ?= cargo
DATA ?= .space
PORT ?= 8787
LAMBDA_FAMILIES := account-api contacts secrets tasks

.PHONY: run test lint fmt build bench clean

## Build and start `spacectl serve` on 127.0.0.1:$(PORT) with the embedded store in $(DATA)/.
run:
	$(CARGO) run --release -p spacectl -- serve --data $(DATA) --port $(PORT)

## Every test: unit, store conformance (embedded + DynamoDB on moto), HTTP end to end,
## and the MCP server against the official Python and TypeScript SDKs and MCP Inspector.
test:
	scripts/with-moto.sh $(CARGO) test --workspace --all-features
	scripts/test-mcp.sh

## Formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

## Every function as an arm64 Lambda zip (cargo-lambda from PyPI into .venv).
build:
	test -x .venv/bin/cargo-lambda || (python3 -m venv .venv && .venv/bin/pip install --quiet cargo-lambda)
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip $(addprefix --bin ,$(LAMBDA_FAMILIES))

## Criterion in-process benchmarks and a wrk load run against `spacectl serve`; figures go into README.md.
bench:
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf $(DATA)
