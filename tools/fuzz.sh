#!/usr/bin/env bash
# make fuzz: coverage-guided fuzzing (cargo fuzz, libFuzzer) of the event parser and the summary request
# parser, FUZZ_SECONDS each (default 300), seeded from the project's fixtures (and ../shared's published
# samples when present). cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. A crash, a panic or an input slower than 10 s fails the run and leaves its input in fuzz/artifacts/.
set -euo pipefail
seconds=${FUZZ_SECONDS:-300}
tools=$PWD/.tools
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "0.13.2"; then
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools"
fi
export RUSTC_BOOTSTRAP=1 PATH=$tools/bin:$PATH
mkdir -p fuzz/corpus/event_parser fuzz/corpus/summary_request .local
cp fixtures/events/*.json fuzz/corpus/event_parser/
if [ -d ../shared/ecs-events ]; then
  find ../shared/ecs-events -name '*.json' -exec cp {} fuzz/corpus/event_parser/ \;
fi
cp fuzz/seeds/summary_request/*.json fuzz/corpus/summary_request/
for target in event_parser summary_request; do
  echo "== $target: ${seconds} s"
  # -max_len: inputs up to 64 KiB (the 1 MB inputs are unit tests: docs/reliability.md); -timeout: a hang.
  (cd fuzz && cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1) 2>&1 |
    tee ".local/fuzz-$target.log" | grep -E "^(#[0-9]+ +DONE|Done|stat::|==|INFO: seed corpus)" || true
  grep -q "^Done [0-9]* runs" ".local/fuzz-$target.log" || { echo "$target: fuzzing failed, see .local/fuzz-$target.log"; exit 1; }
done
