#!/usr/bin/env bash
# The release profile, justified: task-events built with each alternative setting (one change from the shipped
# profile at a time, plus cargo's own default), then size, cold start and CPU per event through runtime_bench.
#   tools/profile_variants.sh build     builds the variants (cached under target/profiles/<name>)
#   tools/profile_variants.sh measure   builds if needed, measures, prints a Markdown table (needs the local stack)
set -euo pipefail
variants=(
  "shipped::"
  "lto-thin:lto = \"thin\":CARGO_PROFILE_RELEASE_LTO=thin"
  "opt-s:opt-level = \"s\":CARGO_PROFILE_RELEASE_OPT_LEVEL=s"
  "opt-z:opt-level = \"z\":CARGO_PROFILE_RELEASE_OPT_LEVEL=z"
  "panic-abort:panic = \"abort\":CARGO_PROFILE_RELEASE_PANIC=abort"
  "cargo-default:cargo's default (lto off, 16 codegen units, not stripped):CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_STRIP=false"
)

binary() { # name -> path of its task-events
  if [ "$1" = shipped ]; then echo target/release/task-events; else echo "target/profiles/$1/release/task-events"; fi
}

build() {
  local name=$1 overrides=$2
  if [ "$name" = shipped ]; then
    cargo build -q --release -p task-events
  else
    # shellcheck disable=SC2086 # the overrides are NAME=VALUE words
    env $overrides CARGO_TARGET_DIR="target/profiles/$name" cargo build -q --release -p task-events
  fi
}

mode=${1:-measure}
for variant in "${variants[@]}"; do
  IFS=: read -r name _ overrides <<<"$variant"
  build "$name" "$overrides"
done
[ "$mode" = build ] && exit 0

cargo build -q --release -p task-timing-tests --bin runtime_bench
echo "| profile | change from the shipped profile | size (x86_64) | init median of 30 | CPU per event (500 events) | peak RSS |"
echo "|---|---|---:|---:|---:|---:|"
for variant in "${variants[@]}"; do
  IFS=: read -r name change _ <<<"$variant"
  bin=$(binary "$name")
  init=$(target/release/runtime_bench init 30 -- "$bin" | cut -d'|' -f4 | xargs)
  events=$(target/release/runtime_bench events 500 -- "$bin")
  cpu=$(cut -d'|' -f7 <<<"$events" | xargs)
  rss=$(cut -d'|' -f8 <<<"$events" | xargs)
  echo "| $name | ${change:-(lto fat, 1 codegen unit, opt-level 3, stripped, unwind)} | $(stat -c %s "$bin") B | $init | $cpu | $rss |"
done
