#!/usr/bin/env bash
# make test: template checks, then every Rust test (unit, integration against moto, end to end
# through cargo lambda). Run by tools/stack.sh, which provides the environment.
set -euo pipefail
cfn-lint infra/template.yaml infra/clock-monitor-alarms.yaml
python tools/check_template.py
cargo test --workspace "$@"
