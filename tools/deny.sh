#!/usr/bin/env bash
# cargo deny against deny.toml, run by `make test`: licenses, bans and sources always (they need no
# network), and RustSec advisories when its database can be fetched from GitHub. These machines reach
# only the package registries: then the advisory check is reported as not run, never as passed.
# DENY_ADVISORIES=required makes an unreachable database a failure (for a CI that has GitHub).
set -euo pipefail
# cargo deny's `cargo metadata` reads every package in Cargo.lock, for every platform (windows-sys among
# them), where a build downloads only the host's: fetch them all from crates.io first, so the check
# works on a machine whose cargo registry has never seen this workspace (issue 17).
cargo fetch --locked --quiet
if cargo-deny fetch db >/dev/null 2>&1; then
  cargo-deny --log-level error check
elif [[ ${DENY_ADVISORIES:-} == required ]]; then
  echo "cargo deny: the RustSec advisory database could not be fetched (github.com), and DENY_ADVISORIES=required" >&2
  exit 1
else
  cargo-deny --log-level error --offline check bans licenses sources
  echo "cargo deny: advisories NOT checked: the RustSec database (github.com) is unreachable from here"
fi
