#!/usr/bin/env bash
# make deploy / make destroy (docs/deploy.md). Needs AWS credentials and a region in the environment
# (AWS_PROFILE or keys, AWS_REGION); AWS_ENDPOINT_URL points it at a local stack instead.
#
#   tools/deploy.sh deploy STACK [Name=Value ...]    build arm64 bootstraps, then tools/deploy.py deploy
#   tools/deploy.sh destroy STACK [--delete-tables]
#   tools/deploy.sh replay STACK --from T --to T     the archive's events of [T, T) into the rule (tools/replay.py)
#   tools/deploy.sh deploy-member STACK CentralEventBusArn=ARN [Name=Value ...]
#                                                    infra/member.yaml: forwards this account's ECS task events
#                                                    to a central stack's bus (no functions, no build)
#   tools/deploy.sh destroy-member STACK
#
# ARCH=x86_64 builds x86_64 bootstraps instead (for machines without the aarch64 target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.local
mkdir -p "$STATE"
source tools/venv.sh
ensure_venv

arch=${ARCH:-arm64}
command=${1:-}
case "$command" in
  deploy)
    if [[ $arch == arm64 && ! -d "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu" ]]; then
      echo "deploy: cannot cross-build arm64 here: the aarch64-unknown-linux-gnu target is not installed." >&2
      echo "        Install it (rustup target add aarch64-unknown-linux-gnu) or deploy x86_64: make deploy ARCH=x86_64" >&2
      exit 2
    fi
    # zig (cross-linking) comes with cargo-lambda's PyPI package in .venv.
    case "$arch" in
      arm64) build_flag=--arm64 ;;
      x86_64) build_flag=--x86-64 ;;
      *) echo "deploy: ARCH must be arm64 or x86_64, not '$arch'" >&2; exit 2 ;;
    esac
    # DEPLOY_PROFILE=dev: unoptimized bootstraps. `make test` deploys to the local stack to prove the
    # stack and its wiring, which the profile does not change, and a release build (fat LTO) takes minutes
    # after every change; .ci/run builds the release bootstraps first (make build), which this then reuses.
    profile_flag=(--release)
    [[ ${DEPLOY_PROFILE:-release} == dev ]] && profile_flag=()
    echo "deploy: cargo lambda build ${profile_flag[*]} $build_flag (the three functions)" >&2
    cargo lambda build "${profile_flag[@]}" "$build_flag" -p task-events -p task-summary -p task-rollups >&2
    python tools/deploy.py "$@"
    ;;
  destroy | deploy-member | destroy-member)
    python tools/deploy.py "$@"
    ;;
  replay)
    shift
    python tools/replay.py "$@"
    ;;
  *)
    echo "usage: tools/deploy.sh deploy STACK [Name=Value ...] | destroy STACK [--delete-tables] | replay STACK --from T --to T" >&2
    echo "       tools/deploy.sh deploy-member STACK CentralEventBusArn=ARN [Name=Value ...] | destroy-member STACK" >&2
    exit 2
    ;;
esac
