#!/usr/bin/env bash
# The test command of the README: prepare the machine, then run every test of the workspace
# (unit, session and end-to-end tests against the real local PostgreSQL and a private cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
# The same tests with every store on PostgreSQL (a new database each, on the local server),
# so both backends pass the whole suite; the databases are dropped afterwards.
drop_test_databases() {
    psql -h 127.0.0.1 -U postgres -d postgres -XAtq -c \
        "SELECT format('DROP DATABASE %I WITH (FORCE);', datname) FROM pg_database
         WHERE datname LIKE 'gh\_test\_%'" | psql -h 127.0.0.1 -U postgres -d postgres -Xq
}
drop_test_databases
GATEHOUSE_TEST_STORE=postgres://postgres@127.0.0.1:5432/ cargo test --workspace
drop_test_databases
# Every fuzz target briefly from its seed corpus, so a regression in a decoder fails CI
# (long runs: `bash scripts/fuzz.sh 3600`).
bash scripts/fuzz.sh 15
