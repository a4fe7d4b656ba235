# The Space API. `make run` serves everything locally; `make test` runs every test,
# installing what the tests need (moto for DynamoDB and Secrets Manager) into .venv.

CARGO ?= cargo
DATA ?= .space
PORT ?= 8787
# Extra `spacectl serve` flags, e.g. ARGS=--allow-local-webhooks.
ARGS ?=
# Every deployed function, read from the committed manifest (`spacectl manifest`; a test
# keeps it current). ARCH is arm64 or x86_64; STAGE is dev or prod.
LAMBDA_FUNCTIONS = $(shell python3 -c 'import json; print(" ".join(f["binary"] for f in json.load(open("infra/manifest.json"))["functions"]))')
ARCH ?= arm64
STAGE ?= dev
REGION ?=

.PHONY: run test lint fmt build deploy bench soak fuzz clean

## Build and start `spacectl serve` on 127.0.0.1:$(PORT) with the embedded store in $(DATA)/.
run:
	$(CARGO) run --release -p spacectl -- serve --data $(DATA) --port $(PORT) $(ARGS)

## Every test: unit, store conformance (embedded + DynamoDB on moto), HTTP end to end,
## the MCP server against the official Python and TypeScript SDKs and MCP Inspector,
## schemathesis against the generated OpenAPI, the README walkthrough through a Python client
## generated from it, and the page-with-a-form walkthrough in a browser.
## `--lib --test '*'`: the binaries' mains only start a router and hold no tests, and each
## empty test harness would link the whole API again.
test:
	scripts/check-infra.sh
	scripts/with-moto.sh $(CARGO) test --workspace --all-features --lib --test '*'
	scripts/test-mcp.sh
	scripts/test-schemathesis.sh
	scripts/test-client.sh
	scripts/test-browser.sh

## Formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

## Every function of infra/manifest.json as a Lambda zip, target/lambda/<binary>/bootstrap.zip
## (ARCH=arm64 by default; the `lambda` profile of Cargo.toml; scripts/cargo-lambda.sh:
## cargo-lambda from PyPI into .venv, linked as fixed-address executables; adds the rustup
## target if missing).
build:
	if [ "$(ARCH)" = arm64 ]; then rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu; fi
	scripts/cargo-lambda.sh build --profile lambda $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64) --output-format zip $(addprefix --bin ,$(LAMBDA_FUNCTIONS))

## Build, then `terraform init` and `apply` infra/ for STAGE (a Terraform workspace per stage).
deploy: build
	cd infra && terraform init -input=false
	cd infra && terraform workspace select -or-create $(STAGE)
	cd infra && terraform apply -var stage=$(STAGE) -var architecture=$(ARCH) $(if $(REGION),-var region=$(REGION))

## Criterion in-process benchmarks, wrk against `spacectl serve` (REST and MCP, next to a bare
## axum handler and the official Python SDK's MCP server), recurrence expansion under attack,
## the purge of a deleted Space, campaigns and inbound messages under load (a kill included),
## contact lookups and what the indexes cost an import (in
## process), then Lambda cold starts, memory and zip sizes; figures go into docs/benchmarks.md.
bench:
	scripts/bench.sh
	$(CARGO) bench -p space-bench --bench lookups --bench social_slots --bench import
	scripts/bench-calendar.sh
	scripts/bench-webhooks.sh
	scripts/bench-social.sh
	scripts/bench-messaging.sh
	scripts/bench-purge.sh
	scripts/bench-coldstart.sh

## 60 s of mixed reads and writes from 32 clients against `spacectl serve` (embedded), then
## 15 s on DynamoDB (moto): 0 5xx, p50/p99, RSS; figures into docs/reliability.md (scripts/soak.sh).
soak:
	scripts/soak.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= token_parse cursor_decode body_validation mcp_request

## Each fuzz target (fuzz/, a crate outside the workspace) for FUZZ_SECONDS, with cargo-fuzz
## (installed if missing; its nightly flags pass on stable through RUSTC_BOOTSTRAP=1). Seeds in
## fuzz/corpus/<target>, new inputs in fuzz/target/corpus/<target>, crashes in fuzz/artifacts/.
## Not part of `make test`.
fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	for target in $(FUZZ_TARGETS); do \
	    case $$target in body_validation|mcp_request) dict=-dict=$(CURDIR)/fuzz/dicts/json.dict;; *) dict=;; esac; \
	    mkdir -p fuzz/target/corpus/$$target && \
	    RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$target \
	        $(CURDIR)/fuzz/target/corpus/$$target $(CURDIR)/fuzz/corpus/$$target -- \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf $(DATA)
