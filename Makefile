# ecs-task-timing: every target installs what it needs (Python tools into .venv, pinned).
SHELL := /bin/bash
STACK := tools/stack.sh
CARGO_TEST_FLAGS ?=

.PHONY: demo test unit-test integration-test local-up local-down bench loadtest build lint fmt clean

## demo: local emulator, generated event stream through task-events, then per-task table, compare and summaries from task-summary.
demo:
	@$(STACK) run tools/demo.sh

## test: unit tests, then integration and end-to-end tests against the local stack.
test:
	$(STACK) run tools/test.sh $(CARGO_TEST_FLAGS)

## unit-test: the pure core only; needs no services.
unit-test:
	cargo test -p shared -p task-events -p task-summary -p clock-monitor --lib --test requests --test fixtures

## local-up / local-down: services and tables for manual use; `eval "$$(make -s local-up)"` prepares a shell.
local-up:
	@$(STACK) up

local-down:
	@$(STACK) down

## bench: criterion benchmarks of the pure core, round trips per event, binary size -> docs/benchmarks.md.
bench:
	$(STACK) run tools/bench.sh

## loadtest: 10,000 lifecycles of one family in one hour, 8 workers, injected faults; rollups checked -> docs/loadtest.md.
loadtest:
	$(STACK) run tools/loadtest.sh

## build: release builds of both functions, as they ship (some compile errors only show with optimisations).
build:
	cargo build --release -p task-events -p task-summary -p clock-monitor

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean: local-down
	rm -rf .local .venv
	cargo clean
