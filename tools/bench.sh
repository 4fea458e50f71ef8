#!/usr/bin/env bash
# make bench: pure-core CPU per event (criterion), DynamoDB requests per event (local stack), release
# binary sizes. Writes docs/benchmarks.md. Run by tools/stack.sh, which provides the environment.
set -euo pipefail
out=docs/benchmarks.md
mkdir -p docs .local

rm -rf target/criterion
cargo bench -p task-timing-tests --bench core -- --noplot 2>&1 | tee .local/bench-core.log
cargo build -q --release -p task-events
cargo run -q --release -p task-timing-tests --bin roundtrips >.local/bench-roundtrips.md
x86_size=$(stat -c %s target/release/task-events)
arm_line="not built: \`cargo lambda build --release --arm64 -p task-events\` failed on this machine (see .local/bench-arm64.log)"
if rustup target list --installed | grep -q aarch64-unknown-linux-gnu &&
  cargo lambda build --release --arm64 -p task-events >.local/bench-arm64.log 2>&1; then
  arm_line="$(stat -c %s target/lambda/task-events/bootstrap) bytes"
elif ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then
  arm_line="not built: the aarch64-unknown-linux-gnu target is not installed (\`rustup target add aarch64-unknown-linux-gnu\`)"
fi

{
  echo "# Benchmarks"
  echo
  echo "Produced by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(rustc --version)."
  echo "Every figure below comes from that run; the command that produced it is given with it."
  echo
  echo "## CPU time per event of the pure core (target: at most 20 µs)"
  echo
  echo "\`cargo bench -p task-timing-tests --bench core\`: a STOPPED Fargate event of $(grep -o 'event size: [0-9]* bytes' .local/bench-core.log | head -1 | cut -d' ' -f3) bytes (the largest of a lifecycle,"
  echo "the one that makes every phase known), from JSON bytes to the DynamoDB UpdateItem parts and the EMF"
  echo "log line, with the functions' allocator (mimalloc). The stages are measured alone; the first row is all of them."
  echo
  python3 tools/criterion_table.py target/criterion
  echo
  echo "## DynamoDB requests per event (target: 1 for a new or newer version, 1 for a duplicate)"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin roundtrips\` against the local stack: 50 generated lifecycles,"
  echo "each event delivered 1 to 3 times, shuffled; an SDK interceptor counts every request sent."
  echo
  cat .local/bench-roundtrips.md
  echo
  echo "## Release binary size"
  echo
  echo "| build | command | size |"
  echo "|---|---|---:|"
  echo "| x86_64, glibc | \`cargo build --release -p task-events\` | ${x86_size} bytes |"
  echo "| arm64 (Lambda bootstrap) | \`cargo lambda build --release --arm64 -p task-events\` | ${arm_line} |"
} >"$out"
echo "wrote $out"
