#!/usr/bin/env bash
# Runs every cargo fuzz target (fuzz/fuzz_targets) from its seed corpus under fixtures/fuzz,
# for SECONDS each (default 30), and fails on the first crash. Usage:
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# New inputs go to a scratch corpus (target/fuzz-corpus), never into fixtures/; a crash's
# input is left in fuzz/artifacts/TARGET/ to be turned into a regression test.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP lets the machine's stable toolchain
# build with them; no sanitizer (the code is safe Rust, libpg_query aside).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
(cd fuzz && cargo fuzz build -s none -O >/dev/null)
for target in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$target"
  mkdir -p "$scratch" "fixtures/fuzz/$target"
  echo "fuzz: $target for ${seconds}s"
  log="target/fuzz-corpus/$target.log"
  status=0
  (cd fuzz && cargo fuzz run -s none -O "$target" "../$scratch" "../fixtures/fuzz/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1) \
    >"$log" 2>&1 || status=$?
  grep -E "^stat::number_of_executed_units|panicked at|SUMMARY|Test unit written" "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target failed (exit $status); see $log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
