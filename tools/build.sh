#!/usr/bin/env bash
# make build: the release builds as they ship, so errors that only show with optimisations fail here
# (task-summary once hit rustc's "queries overflow the depth limit" in release only).
#   - the three Lambda bootstraps with `cargo lambda build --release`, arm64 as `make deploy` ships them
#     (x86_64 where the aarch64 target is not installed); the deploy test of .ci/run deploys these;
#   - the task-sidecar sidecar with `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.local
mkdir -p "$STATE"
source tools/venv.sh
ensure_venv # cargo-lambda and zig
if [[ -d "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu" ]]; then
  arch=--arm64
else
  arch=--x86-64
  echo "build: the aarch64 target is not installed: x86_64 bootstraps" >&2
fi
cargo lambda build --release "$arch" -p task-events -p task-summary -p task-rollups
cargo build --release -p task-sidecar
