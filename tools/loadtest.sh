#!/usr/bin/env bash
# make loadtest: a burst of 50,000 deliveries (20,000 task lifecycles of one family in one hour) through
# task-events with 8 concurrent workers and the table's stream through task-rollups against the local stack,
# faults on both sides (request faults, dying invocations, killed, duplicated and bisected batches, shard
# rollovers); checks every record, every task's metrics and every rollup item afterwards. Writes docs/loadtest.md and its section of docs/benchmarks.md. Run by tools/stack.sh.
set -euo pipefail
tasks=${LOADTEST_TASKS:-20000}
workers=${LOADTEST_WORKERS:-8}
mkdir -p docs .local
cargo build -q --release -p task-timing-tests --bin loadtest
target/release/loadtest "$tasks" "$workers" | tee .local/loadtest.out
{
  echo "\`make loadtest\` (\`target/release/loadtest $tasks $workers\`) on $(date -u +%Y-%m-%d), $(nproc) cores: $(head -1 .local/loadtest.out)."
  echo "The local stack serves one request at a time (tools/moto_server.py), so the rate is moto's; the point is"
  echo "correctness under concurrency: every record, every task's metrics and every rollup item are compared"
  echo "with the generator's truth afterwards."
  echo
  tail -n +2 .local/loadtest.out
} >docs/loadtest.md
python3 - <<'PY'
import re, pathlib
bench = pathlib.Path("docs/benchmarks.md")
if bench.exists():
    text = bench.read_text()
    block = "<!-- loadtest -->\n" + pathlib.Path("docs/loadtest.md").read_text() + "<!-- /loadtest -->"
    bench.write_text(re.sub(r"<!-- loadtest -->.*?<!-- /loadtest -->", lambda _: block, text, flags=re.S))
PY
echo "wrote docs/loadtest.md"
