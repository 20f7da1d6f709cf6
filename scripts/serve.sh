#!/usr/bin/env bash
# The README's first command: builds what the gateway needs and runs it on the quick-start
# config (or the config given). The one build dependency beyond Rust is libclang: PostgreSQL's
# own parser (libpg_query, through the pg_query crate) is compiled from C and bound by bindgen.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { ls /usr/lib/llvm-*/lib/libclang.so* || ls /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*; } >/dev/null 2>&1; then
  echo "serve: installing libclang-dev (needed to build PostgreSQL's parser)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null
fi
# The web console, embedded in the binary (skipped if it is built already).
bash scripts/console.sh
if [ $# -eq 0 ]; then
  set -- --config gatehouse.toml
fi
exec cargo run --release -- serve "$@"
