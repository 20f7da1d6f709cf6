#!/usr/bin/env bash
# The test command of the README: prepare the machine, then run every test of the workspace
# (unit, session and end-to-end tests against the real local PostgreSQL and a private cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
# Every fuzz target briefly from its seed corpus, so a regression in a decoder fails CI
# (long runs: `bash scripts/fuzz.sh 3600`).
bash scripts/fuzz.sh 15
