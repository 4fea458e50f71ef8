# ecs-task-timing: every target installs what it needs (Python tools into .venv, pinned).
SHELL := /bin/bash
STACK := tools/stack.sh
CARGO_TEST_FLAGS ?=

STACK_NAME ?= ecs-task-timing
MEMBER_STACK_NAME ?= ecs-task-timing-member
PARAMS ?=
ARCH ?= arm64

.PHONY: demo test unit-test integration-test local-up local-down bench loadtest soak fuzz calibrate build lint fmt clean deploy destroy replay deploy-member destroy-member

## demo: local emulator, generated event stream through task-events, the stream through task-rollups, then per-task table, compare and summaries from task-summary.
demo:
	@$(STACK) run tools/demo.sh

## test: unit tests, then integration and end-to-end tests against the local stack.
test:
	$(STACK) run tools/test.sh $(CARGO_TEST_FLAGS)

## unit-test: the pure core only; needs no services.
unit-test:
	cargo test -p timing-domain -p timing-dynamodb -p lambda-body -p task-events -p task-summary -p task-sidecar --lib
	cargo test -p timing-domain --test requests

## local-up / local-down: services and tables for manual use; `eval "$$(make -s local-up)"` prepares a shell.
local-up:
	@$(STACK) up

local-down:
	@$(STACK) down

## bench: criterion benchmarks of the pure core, round trips per event, binary size -> docs/benchmarks.md.
bench:
	$(STACK) run tools/bench.sh

## loadtest: 50,000 deliveries of 20,000 lifecycles, 8 workers, through both functions with faults on both sides; records, metrics, rollups checked -> docs/loadtest.md (about 25 minutes).
loadtest:
	$(STACK) run tools/loadtest.sh

## soak: the fault-injected randomized replay at size (20 sequences of 40 tasks) -> docs/reliability.md figures.
soak:
	REPLAY_SEQUENCES=$${REPLAY_SEQUENCES:-20} REPLAY_TASKS=$${REPLAY_TASKS:-40} $(STACK) run cargo test -p task-timing-tests --test reliability randomized -- --nocapture

## calibrate: the regression watch's false-alarm rate and power over 10,000 seeds, no services (about 4 minutes) -> docs/regressions.md.
calibrate:
	cargo run --release -q -p task-timing-tests --bin regression_calibration $(SEEDS)

## fuzz: cargo fuzz (installed into .tools) on the event and summary request parsers, FUZZ_SECONDS each (300).
fuzz:
	tools/fuzz.sh

## build: release builds as they ship: the three bootstraps (arm64, cargo lambda) and task-sidecar (some compile errors only show with optimisations).
build:
	tools/build.sh

## deploy: arm64 bootstraps, the stack (infra/template.yaml), the three functions, then the rule's target and the stream's mapping; to AWS.
##   make deploy [STACK_NAME=ecs-task-timing] [PARAMS="Clusters=prod,batch StartupP90AlarmSeconds=45"] [ARCH=x86_64]
deploy:
	ARCH=$(ARCH) tools/deploy.sh deploy $(STACK_NAME) $(PARAMS)

## deploy-member: infra/member.yaml in this account and region: its ECS task events (and sidecar reports) forwarded to a central stack's bus (docs/organisation.md).
##   make deploy PARAMS="OrganizationId=o-..."   (the central stack; its output EventBusArn), then in each member account:
##   make deploy-member CENTRAL_BUS_ARN=arn:aws:events:REGION:ACCOUNT:event-bus/ecs-task-timing-central [MEMBER_STACK_NAME=ecs-task-timing-member] [PARAMS="CaptureStates=RUNNING,STOPPED"]
deploy-member:
	tools/deploy.sh deploy-member $(MEMBER_STACK_NAME) $(if $(CENTRAL_BUS_ARN),CentralEventBusArn=$(CENTRAL_BUS_ARN)) $(PARAMS)

## destroy-member: the member stack.
destroy-member:
	tools/deploy.sh destroy-member $(MEMBER_STACK_NAME)

## replay: the event archive's events of [FROM, TO) replayed into the stack's rule, so task-events (docs/history.md).
##   make replay FROM=2026-11-20T09:00:00Z TO=2026-11-20T12:00:00Z [STACK_NAME=ecs-task-timing]
replay:
	tools/deploy.sh replay $(STACK_NAME) --from "$(FROM)" --to "$(TO)"

## destroy: the functions and the stack; the tables stay unless DELETE_TABLES=1.
destroy:
	tools/deploy.sh destroy $(STACK_NAME) $(if $(DELETE_TABLES),--delete-tables)

lint:
	python3 tools/module_cycles.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean: local-down
	rm -rf .local .venv .venv-checkov
	cargo clean
