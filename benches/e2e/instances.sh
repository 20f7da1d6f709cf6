#!/usr/bin/env bash
# Two gateways on one PostgreSQL store, each under pgbench -S at 8 clients at the same time:
# whether the shared store keeps up with their audit (the journals' backlog, sampled every
# second from /metrics, stays bounded and drains at once after the run), and every
# statement in it. Then the same load through one gateway on SQLite, for comparison.
#
#   bash benches/e2e/instances.sh              # 20 s of load
#   SECONDS_PER_RUN=30 bash benches/e2e/instances.sh
#
# Needs the local PostgreSQL on 127.0.0.1:5432 (pgbench's tables in gh_bench, the store in a
# database of its own).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
SCALE=${SCALE:-10}
DB=gh_bench
STORE=gh_bench_store

bash scripts/setup.sh >/dev/null
cargo build --release -q -p gatehouse
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

psql_pg() { psql -h 127.0.0.1 -U postgres -d postgres -XAtq "$@"; }
if ! psql_pg -c "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  psql_pg -c "CREATE DATABASE $DB"
  pgbench -h 127.0.0.1 -U postgres -i -q -s "$SCALE" "$DB" >/dev/null 2>&1
fi
psql_pg -c "DROP DATABASE IF EXISTS $STORE WITH (FORCE)" -c "CREATE DATABASE $STORE"

gateway() { # name state -> starts it; sets port_NAME admin_NAME pid_NAME
  local name=$1 state=$2
  mkdir -p "$work/$name"
  cat > "$work/$name/gatehouse.toml" <<TOML
[gateway]
state = "$state"
instance = "$name"
state_dir = "$work/shared"
recordings = "$work/shared/recordings"
[listen]
postgres = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[connection]]
name = "$DB"
protocol = "postgres"
address = "127.0.0.1:5432"
database = "$DB"
username = "postgres"
tls = "disable"
groups = ["bench"]
TOML
  ./target/release/gatehouse serve --config "$work/$name/gatehouse.toml" >/dev/null 2>"$work/$name/log" &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 1 100); do grep -q "admin listening on" "$work/$name/log" && break; sleep 0.1; done
  eval "port_$name=$(sed -n 's/.*postgres listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/$name/log")"
  eval "admin_$name=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/$name/log")"
}

metric() { # admin_port name -> value
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; exit}'
}

load() { # label names... : pgbench -S -c 8 through each named gateway at once; prints results
  local label=$1; shift
  local token out names=("$@") name
  token=$(./target/release/gatehouse --config "$work/${names[0]}/gatehouse.toml" token create --identity bench --group bench 2>/dev/null)
  for name in "${names[@]}"; do
    local port_var="port_$name"
    PGPASSWORD=$token PGSSLMODE=disable pgbench -h 127.0.0.1 -p "${!port_var}" -U bench -n -S \
      -M simple -c 8 -j 2 -T "$SECONDS_PER_RUN" "$DB" > "$work/$name/pgbench.out" 2>&1 &
  done
  local max_backlog=0 max_lag=0 s b l
  for s in $(seq 1 "$SECONDS_PER_RUN"); do
    sleep 1
    for name in "${names[@]}"; do
      local admin_var="admin_$name"
      b=$(metric "${!admin_var}" gatehouse_journal_backlog_entries); b=${b:-0}
      l=$(metric "${!admin_var}" gatehouse_ingest_lag_seconds); l=${l:-0}
      max_backlog=$(awk -v a="$max_backlog" -v b="$b" 'BEGIN {print (b > a ? b : a)}')
      max_lag=$(awk -v a="$max_lag" -v b="$l" 'BEGIN {print (b > a ? b : a)}')
      [ -n "${VERBOSE:-}" ] && echo "    ${s}s $name backlog $b lag $l" >&2
    done
  done
  wait_all() { while pgrep -f "pgbench -h 127.0.0.1" >/dev/null; do sleep 0.2; done; }
  wait_all
  local ended; ended=$(date +%s.%N)
  # The drain: until every instance's backlog is empty.
  local drained=0
  while [ "$drained" = 0 ]; do
    drained=1
    for name in "${names[@]}"; do
      local admin_var="admin_$name"
      [ "$(metric "${!admin_var}" gatehouse_journal_backlog_entries)" = "0" ] || drained=0
    done
    [ "$drained" = 1 ] || sleep 0.05
  done
  local drain; drain=$(awk -v a="$ended" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
  local total_tps=0 total_tx=0
  for name in "${names[@]}"; do
    local tps tx
    tps=$(awk '/^tps/ {print $3}' "$work/$name/pgbench.out")
    tx=$(awk '/actually processed/ {split($NF, n, "/"); print n[1]}' "$work/$name/pgbench.out")
    total_tps=$(awk -v a="$total_tps" -v b="$tps" 'BEGIN {print a + b}')
    total_tx=$(( total_tx + tx ))
    printf '  %-8s %10.1f tps  %8d transactions\n' "$name" "$tps" "$tx"
  done
  printf '%s: %.1f tps in all; journal backlog at most %s entries, oldest waited at most %.2fs; drained %ss after the load\n' \
    "$label" "$total_tps" "$max_backlog" "$max_lag" "$drain"
  echo "$total_tx"
}

echo "pgbench -S -M simple, 8 clients per gateway, ${SECONDS_PER_RUN}s"
gateway gwa "postgres://postgres@127.0.0.1:5432/$STORE"
gateway gwb "postgres://postgres@127.0.0.1:5432/$STORE"
tx=$(load "two gateways, one PostgreSQL store" gwa gwb | tee /dev/stderr | tail -1)
stored=$(psql -h 127.0.0.1 -U postgres -d "$STORE" -XAtq -c \
  "SELECT count(*) FROM audit_entries WHERE statement LIKE 'SELECT abalance%' AND status IS NOT NULL")
echo "  statements run: $tx; in the store with their outcome: $stored"
kill "$pid_gwa" "$pid_gwb"; wait "$pid_gwa" "$pid_gwb" 2>/dev/null || true

rm -rf "$work/shared"
gateway gwsqlite "sqlite:$work/sqlite/gatehouse.db"
load "one gateway, SQLite" gwsqlite 2>&1 | head -n -1
