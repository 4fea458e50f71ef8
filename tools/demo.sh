#!/usr/bin/env bash
# make demo: a generated event stream through the real task-events function under `cargo lambda watch`,
# the table's stream through task-rollups, then the per-task table read back from DynamoDB and summaries
# from task-summary. Run by tools/stack.sh, which provides the environment.
set -euo pipefail
dir=.local/demo
rm -rf "$dir"
cargo build -q -p task-timing-tests --bin devtool
devtool=target/debug/devtool
"$devtool" demo-events "$dir"

# Where this run's function output starts in the emulator's log (a reused emulator keeps earlier runs').
log_start=$(($(wc -l <.local/watch.log 2>/dev/null || echo 0) + 1))
declare -A outcomes=()
documents=0
send() { # every event file of a directory, in order, through task-events
  local event answer outcome
  for event in "$1"/*.json; do
    answer=$(cargo lambda invoke task-events --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_INVOKE_PORT" \
      --data-file "$event" 2>&1) || { echo "invocation failed for $event: $answer" >&2; exit 1; }
    outcome=$(sed -n 's/.*"outcome":"\([a-z]*\)".*/\1/p' <<<"$answer")
    outcomes[$outcome]=$((${outcomes[$outcome]:-0} + 1))
    # A written event emits one EMF document when it made metrics known: its answer lists them.
    if grep -q '"metricsEmitted":\["' <<<"$answer"; then documents=$((documents + 1)); fi
  done
}
send "$dir/events"
echo "task-events answered: ${outcomes[written]:-0} written, ${outcomes[duplicate]:-0} duplicate, ${outcomes[stale]:-0} stale."
echo "EMF documents emitted: $documents, each metric once per task (the function's stdout is in .local/watch.log)."
# The stream poller of the local stack feeds task-rollups as the writes happen; this drains what is left,
# so the summaries below (from the rollups) see every task.
cargo build -q -p task-timing-tests --bin stream_poller
target/debug/stream_poller drain
echo
"$devtool" report "$dir"

# task-summary through the Lambda runtime, as a user would ask it: answers as Markdown tables.
ask() { # title, request
  local answer
  answer=$(cargo lambda invoke task-summary --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_INVOKE_PORT" \
    --data-ascii "$2" 2>&1) || { echo "task-summary failed for $2: $answer" >&2; exit 1; }
  printf "\n## %s\n\n\$ cargo lambda invoke task-summary --data-ascii '%s'\n\n" "$1" "$2"
  python -c 'import json, sys; print(json.load(sys.stdin)["text"])' <<<"$answer"
}
ask "With the SOCI index or without? (checkout = baseline, checkout-soci = candidate; exact, with the test)" \
  '{"query":"compare","baseline":{"family":"checkout"},"candidate":{"family":"checkout-soci"},"exact":true,"format":"table"}'
ask "Did they really lazy-load, and did it pay? checkout-soci pulled whole (overlayfs, baseline) against lazy-loaded (soci, candidate), by the sidecar's reports: start-up, then warm-up (startedAt to ready) and ready (createdAt to ready)" \
  '{"query":"compare","baseline":{"family":"checkout-soci","snapshotter":"overlayfs"},"candidate":{"family":"checkout-soci","snapshotter":"soci"},"phases":["startup","warmUp","ready","imagePull"],"exact":true,"format":"table"}'
# The same comparison as a picture: both start-up distributions (ECDF), n, p50 and p90, the verdict.
svg_request='{"query":"compare","baseline":{"family":"checkout-soci","snapshotter":"overlayfs"},"candidate":{"family":"checkout-soci","snapshotter":"soci"},"exact":true,"format":"svg"}'
cargo lambda invoke task-summary --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_INVOKE_PORT" --data-ascii "$svg_request" \
  | python -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["svg"])' >"$dir/compare-snapshotter.svg"
printf "\nThe comparison as a picture (\"format\": \"svg\"): %s (%s bytes); open it in a browser.\n" \
  "$dir/compare-snapshotter.svg" "$(wc -c <"$dir/compare-snapshotter.svg")"
ask "checkout-soci by snapshotter, last 24 h (from the rollups; unreported: no report arrived)" \
  '{"query":"summary","family":"checkout-soci","groupBy":["snapshotter"],"format":"table"}'
# The fallback alarm's metric, as task-events emitted it (EMF on its stdout, which cargo lambda watch keeps).
fallbacks=$(tail -n +"$log_start" .local/watch.log | grep -c '"LazyLoadingFallbacks":1' || true)
echo
echo "Lazy-loading fallbacks: $fallbacks tasks of the families expected to lazy-load (LAZY_LOADING_FAMILIES=$LAZY_LOADING_FAMILIES) pulled with overlayfs; the LazyLoadingFallbacks alarm fires on any."
for family in checkout checkout-soci; do
  ask "Summary of $family by family and revision, last 24 h (from the rollups)" \
    "{\"query\":\"summary\",\"family\":\"$family\",\"groupBy\":[\"family\",\"revision\"],\"format\":\"table\"}"
done

# A release: checkout:15 ships with a larger image. The regression watch (task-summary's `regressions` query,
# which the stack's hourly schedule runs) judges every family's newest revision against the one before.
echo
"$devtool" release-events "$dir/release"
outcomes=()
send "$dir/release"
echo "task-events answered: ${outcomes[written]:-0} written, ${outcomes[duplicate]:-0} duplicate, ${outcomes[stale]:-0} stale."
target/debug/stream_poller drain
ask "Did the new revision start slower? Every family's newest revision against the one before, last 7 days (from the rollups)" \
  '{"query":"regressions","format":"table"}'
# The hourly schedule's request: the same judgement, published as StartupRegression (EMF on stdout).
regressions_start=$(($(wc -l <.local/watch.log) + 1))
cargo lambda invoke task-summary --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_INVOKE_PORT" \
  --data-ascii '{"query":"regressions","publish":true}' >/dev/null
echo
echo "Published by the schedule's request {\"query\":\"regressions\",\"publish\":true} (StartupRegression by TaskFamily; the alarm fires on any 1):"
published=$(tail -n +"$regressions_start" .local/watch.log | grep '"StartupRegression"') \
  || { echo "no StartupRegression document in .local/watch.log after the publishing request" >&2; exit 1; }
python -c 'import json, sys
for line in sys.stdin:
    document = json.loads(line[line.index("{"):])
    print("  %s: %s  (%s)" % (document["TaskFamily"], document["StartupRegression"], document["summary"]))' <<<"$published"

# Central mode (docs/organisation.md): a second account forwards its tasks to the same bus. Its cluster and
# family have this account's names; the records, the rollups and the answers keep the two apart.
echo
"$devtool" account-events "$dir/account"
outcomes=()
send "$dir/account"
echo "task-events answered: ${outcomes[written]:-0} written, ${outcomes[duplicate]:-0} duplicate, ${outcomes[stale]:-0} stale."
target/debug/stream_poller drain
ask "checkout by account, region and revision, last 24 h (from the rollups)" \
  '{"query":"summary","family":"checkout","groupBy":["account","region","revision"],"phases":["startup","imagePull"],"format":"table"}'
