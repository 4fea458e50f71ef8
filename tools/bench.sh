#!/usr/bin/env bash
# make bench: pure-core CPU per event (criterion), DynamoDB requests per event (local stack), task-summary's
# scaling and in-memory statistics, release binary sizes. Writes docs/benchmarks.md. Run by tools/stack.sh, which provides the environment.
set -euo pipefail
out=docs/benchmarks.md
mkdir -p docs .local

rm -rf target/criterion
cargo bench -p task-timing-tests --bench core -- --noplot 2>&1 | tee .local/bench-core.log
cargo bench -p task-timing-tests --bench summary -- --noplot 2>&1 | tee .local/bench-summary.log
cargo build -q --release -p task-events -p task-summary -p task-sidecar
cargo run -q --release -p task-timing-tests --bin roundtrips >.local/bench-roundtrips.md
cargo run -q --release -p task-timing-tests --bin summary_scaling 1000 10000 >.local/bench-scaling.md
cargo run -q --release -p task-timing-tests --bin rollup_scaling 1000 100000 1000000 >.local/bench-rollups.md
cargo run -q --release -p task-timing-tests --bin clock_usage target/release/task-sidecar 1000 >.local/bench-clock.md
# Cold starts and per-event cost through the Runtime API stand-in: ours, the floor, the Python reference.
cargo build -q --release -p task-timing-tests --bin runtime_bench --bin hello_lambda
runtime_bench=target/release/runtime_bench
python_reference=(python tests/bench/reference_task_events.py)
{
  $runtime_bench init 30 -- target/release/hello_lambda
  $runtime_bench init 30 -- target/release/task-events
  $runtime_bench init 30 -- target/release/task-summary
  # Debian's /etc/ssl/certs has 292 hashed links that the SDK's root loading reads one by one; Lambda's
  # image keeps one bundle file. This row loads the same bundle without the links.
  mkdir -p .local/no-hashed-certs
  $runtime_bench init 30 -- SSL_CERT_DIR=.local/no-hashed-certs SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt target/release/task-events
  $runtime_bench init 30 -- "${python_reference[@]}"
} >.local/bench-init.md
{
  $runtime_bench events 1000 -- target/release/task-events
  $runtime_bench events 1000 -- "${python_reference[@]}"
} >.local/bench-events.md
tools/profile_variants.sh measure >.local/bench-profiles.md
x86_size=$(stat -c %s target/release/task-events)
arm_events="not built: \`cargo lambda build --release --arm64\` failed on this machine (see .local/bench-arm64.log)"
arm_summary=$arm_events
if rustup target list --installed | grep -q aarch64-unknown-linux-gnu &&
  cargo lambda build --release --arm64 -p task-events -p task-summary >.local/bench-arm64.log 2>&1; then
  arm_events="$(stat -c %s target/lambda/task-events/bootstrap) bytes"
  arm_summary="$(stat -c %s target/lambda/task-summary/bootstrap) bytes"
elif ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then
  arm_events="not built: the aarch64-unknown-linux-gnu target is not installed (\`rustup target add aarch64-unknown-linux-gnu\`)"
  arm_summary=$arm_events
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
  python3 tools/criterion_table.py target/criterion core
  echo
  echo "## Cold start: process start to the first \`GET /2018-06-01/runtime/invocation/next\` (target: at most 25 ms)"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin runtime_bench init 30 -- COMMAND\`: each run starts the process"
  echo "afresh against a local stand-in for the Lambda Runtime API (\`tests/src/runtime_api.rs\`) with the environment"
  echo "Lambda gives a 128 MB function, and times it from just before spawn (so exec and the dynamic loader count, as in"
  echo "Lambda's Init Duration) to its first request for an invocation. \`hello_lambda\` is the floor: an echo function"
  echo "on lambda_runtime with the same profile and allocator. The Python reference (\`tests/bench/reference_task_events.py\`,"
  echo "boto3 $(python -c 'import boto3; print(boto3.__version__)'), $(python --version)) is the same work written the obvious way,"
  echo "with the loop a custom runtime runs. Page cache warm: these are the process's own costs, not the download of the code."
  echo
  echo "| command | runs | median | min | p90 | peak RSS at first request (median) |"
  echo "|---|---:|---:|---:|---:|---:|"
  cat .local/bench-init.md
  echo
  echo "## Per event through the runtime: handler time, CPU and memory (target: peak RSS under 32 MB)"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin runtime_bench events 1000 -- COMMAND\`: one process, the stand-in"
  echo "hands it 1,000 RUNNING and STOPPED events of generated lifecycles one at a time, in version order, each once"
  echo "(what the rule delivers), with DynamoDB answered by the local stack. Handler time is hand-over to response"
  echo "(moto's answer time included, so it says little about AWS); CPU per event is the process's CPU (utime + stime)"
  echo "after init divided by the events; peak RSS is VmHWM after the last one. The Python reference does the same"
  echo "DynamoDB work: the versioned record write and the EMF ledger, one request per event (the rollups follow from"
  echo "the stream, in task-rollups)."
  echo
  echo "| command | events | handler mean | handler p50 | handler p99 | CPU per event | peak RSS | written to stdout/stderr per event |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  cat .local/bench-events.md
  echo
  python3 tools/bench_ratios.py .local/bench-init.md .local/bench-events.md
  echo
  echo "The bootstraps run with the variables Lambda sets (\`runtime_bench\` clears this shell's), and the functions"
  echo "log as \`make deploy\` configures them (JSON, INFO). The row with \`SSL_CERT_DIR\` is task-events loading the"
  echo "same root certificates from the bundle file alone: Debian's /etc/ssl/certs also holds 292 hashed links,"
  echo "which the SDK's root loading (rustls-native-certs) reads one by one at init; Lambda's Amazon Linux 2023 image"
  echo "keeps a bundle file and no hashed links, so there init costs what that row shows."
  echo
  echo "## Release profile: each setting against the alternatives"
  echo
  echo "\`tools/profile_variants.sh measure\`: task-events built with one profile setting changed at a time"
  echo "(\`CARGO_PROFILE_RELEASE_*\` overrides, separate target directories), each measured like the rows above:"
  echo "size, \`runtime_bench init 30\`, \`runtime_bench events 500\` against the local stack, one after the other."
  echo
  cat .local/bench-profiles.md
  echo
  echo "## Cost per million task state change events"
  echo
  echo "\`python3 tools/bench_cost.py\` on this run's figures: handler time, CPU and bytes written per event"
  echo "(\`runtime_bench events 1000\` above), the largest record and task-rollups' time per batch (\`roundtrips\` below),"
  echo "the rollup items' mean sizes by tasks a month (\`rollup_scaling\` below) and the stream mapping's defaults in"
  echo "infra/template.yaml, at us-east-1 list prices. A task sends three events (RUNNING; RUNNING with desiredStatus"
  echo "STOPPED; STOPPED), so a million events are 333,333 tasks. Write units: a record write costs 1 unit per KB"
  echo "started, its index copy (projection ALL) as much again; task-rollups writes each rollup item a batch touches"
  echo "once, 1 unit per KB started, with 85 B of guard per shard that wrote it (2 for an hour item, 7 for a day item:"
  echo "shards assumed to roll over about every 4 hours). How many tasks of a series share a batch follows"
  echo "from the rate and the batching window (the script's docstring has the model)."
  echo
  python3 tools/bench_cost.py .local/bench-events.md .local/bench-roundtrips.md .local/bench-rollups.md
  echo
  echo "## DynamoDB requests per event (target: 1.00 in task-events for every outcome)"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin roundtrips\` against the local stack: 50 generated lifecycles,"
  echo "each event delivered 1 to 3 times, shuffled; an SDK interceptor counts every request sent. Then the table's"
  echo "stream through task-rollups (the local poller, batches of up to 100, one shard)."
  echo
  cat .local/bench-roundtrips.md
  echo
  echo "## Burst: one family's hot rollup items, and the lag from record to rollup"
  echo
  # Measured by hand (\`burst\`, against a fresh stack: its own figures say how), kept across runs.
  if [ -f docs/burst.md ]; then cat docs/burst.md; else echo "Not run yet: \`cargo run --release -p task-timing-tests --bin burst 10000\`."; fi
  echo
  echo "## task-summary: time and reads by tasks in the window"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin summary_scaling 1000 10000\` against the local stack: a fresh"
  echo "table per size loaded with that many generated records of one family over 30 days (batch writes), then one"
  echo "\`summary\` of the 31-day window through the real handler. Handler CPU is the CPU time of the (single) runtime"
  echo "thread during the call; the rest of the wall time is moto answering the Query calls."
  echo
  cat .local/bench-scaling.md
  echo
  echo "100,000 tasks are not run against moto: its Query re-sorts and walks the whole index for every 1 MB page,"
  echo "so the time grows with the square of the tasks (10,000 tasks already take about a minute). The handler's"
  echo "own share at 100,000 is the fold row in the next table."
  echo
  echo "## task-summary from the rollups: a month of one family by tasks in the window"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin rollup_scaling 1000 100000 1000000\` against the local stack:"
  echo "fresh tables per size; N tasks of one family and revision created over the 31 days before 2026-11-22; their rollup"
  echo "deltas (hour and day items) computed with task-events' own functions (\`rollup::known_markers\`, \`rollup::deltas\`),"
  echo "summed per item and batch-written as the items its updates would leave (\`rollup::new_item\`; one UpdateItem per"
  echo "item would exceed DynamoDB's 4 KB expression limit for a busy day's hundreds of buckets, and moto answered one"
  echo "with HTTP 500); then \`summary\` through the real handler over two windows: the 31 whole days (day items only,"
  echo "one Query) and 30 days from 12:30 to 12:30 (day items plus the hour items of both partial days, three Queries)."
  echo "Up to 10,000 tasks the records are loaded too and the exact path timed beside it. Handler CPU is the runtime"
  echo "thread's CPU during the call, SDK decoding included (target: under 100 ms); the rest of the wall time is moto"
  echo "answering the Query calls. Every answer's task count is checked against the generated tasks created in the"
  echo "window's whole hours. Item sizes follow DynamoDB's sizing rules (names plus values), which set the write units"
  echo "each update of an item costs."
  echo
  cat .local/bench-rollups.md
  echo
  echo "## Load test: exactly-once rollups under concurrency and faults"
  echo
  echo "<!-- loadtest -->"
  if [ -f docs/loadtest.md ]; then cat docs/loadtest.md; else echo "Not run yet: \`make loadtest\`."; fi
  echo "<!-- /loadtest -->"
  echo
  echo "## task-summary: in-memory work per 100,000 values"
  echo
  echo "\`cargo bench -p task-timing-tests --bench summary\`, values of about 20 s and 40 s, mimalloc."
  echo
  python3 tools/criterion_table.py target/criterion summary
  echo
  echo "## task-sidecar: resource use"
  echo
  echo "\`cargo run --release -p task-timing-tests --bin clock_usage target/release/task-sidecar 1000\`: the release binary"
  echo "against the metadata stand-in (fixtures/task-metadata/fargate-soci-with-sidecar.json) and the local stack. First the"
  echo "image report as a one-shot container (CPU and peak RSS of the exited process, from getrusage); then \`run\`"
  echo "sampling every 100 ms and publishing each sample (through the CBOR bridge), without and with the image report:"
  echo "CPU is utime + stime from /proc between the 20th sample and 1,000 samples later, divided by the samples; RSS and"
  echo "peak RSS (VmHWM) from /proc at the end."
  echo
  cat .local/bench-clock.md
  echo
  echo "## Release binary size"
  echo
  echo "| build | command | size |"
  echo "|---|---|---:|"
  echo "| x86_64, glibc | \`cargo build --release -p task-events\` | ${x86_size} bytes |"
  echo "| x86_64, glibc | \`cargo build --release -p task-summary\` | $(stat -c %s target/release/task-summary) bytes |"
  echo "| x86_64, glibc | \`cargo build --release -p task-sidecar\` | $(stat -c %s target/release/task-sidecar) bytes |"
  echo "| arm64 (Lambda bootstrap) | \`cargo lambda build --release --arm64 -p task-events\` | ${arm_events} |"
  echo "| arm64 (Lambda bootstrap) | \`cargo lambda build --release --arm64 -p task-summary\` | ${arm_summary} |"
} >"$out"
echo "wrote $out"
