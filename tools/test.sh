#!/usr/bin/env bash
# make test: cargo deny (tools/deny.sh), template checks, the deploy and event-pattern tests
# (tests/infra), then every Rust test (unit, integration against moto, end to end through cargo
# lambda). Run by tools/stack.sh, which provides the environment.
set -euo pipefail
ROOT=$PWD
STATE=$ROOT/.local
source tools/venv.sh
tools/deny.sh
cfn-lint infra/template.yaml infra/member.yaml
ensure_checkov
# --skip-download: no network for checkov's guideline links; every skipped check is justified in the template.
for template in infra/template.yaml infra/member.yaml; do
  "$CHECKOV_VENV/bin/checkov" --file "$template" --framework cloudformation --compact --quiet --skip-download
done
# The deploy test builds unoptimized bootstraps unless told otherwise (tools/deploy.sh, DEPLOY_PROFILE).
DEPLOY_PROFILE=${DEPLOY_PROFILE:-dev} python -m pytest -q -p no:cacheprovider tests/infra
if [[ ${ORDERING_ORDERS:-} != all ]]; then
  echo "ordering: every 7th of the 720 delivery orders (103); ORDERING_ORDERS=all checks every one, as .ci/run does"
fi
cargo test --workspace "$@" -- --skip randomized_replays
# The fault-injected replay prints its figures (faults by kind, retries, dead letters, violations). The same
# package selection as above, filtered by name: `-p task-timing-tests` alone would resolve other features
# (no dev-dependencies of the other crates) and rebuild the SDK for this one test.
cargo test --workspace "$@" -- --nocapture randomized_replays
