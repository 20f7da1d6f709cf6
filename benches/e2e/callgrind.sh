#!/usr/bin/env bash
# Instructions per PostgreSQL statement, counted by valgrind's callgrind: steady whatever else
# the shared machine runs, unlike time. The gateway (release) serves pgbench -S -M simple -c 1
# twice, SHORT and LONG statements; the difference divided by LONG - SHORT is what one statement
# costs, with start-up and the first connection cancelled out. Prints it for the runtime's
# workers (the sessions: read, classify, judge, journal, relay, finish), the audit ingest
# thread (journal to the store), and the whole process (which also counts idle ticks, so it
# moves a little with the run's length).
#
#   bash benches/e2e/callgrind.sh            # SHORT=300 LONG=1300
#   BIN=/path/to/other/gatehouse bash benches/e2e/callgrind.sh   # another build, same counts
#
# Under valgrind, aws-lc's SHA-256 runs its AVX code instead of the CPU's SHA extensions, so
# hashing weighs more here than it does in time; compare builds, not these against perf.
set -euo pipefail
cd "$(dirname "$0")/../.."

SHORT=${SHORT:-300}
LONG=${LONG:-1300}
DB=gh_bench
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p gatehouse
  BIN=./target/release/gatehouse
fi
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $DB"
  pgbench -h 127.0.0.1 -U postgres -i -q -s 10 "$DB" >/dev/null 2>&1
fi
work=$(mktemp -d)
trap 'kill "${gw_pid:-}" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# count STATEMENTS: "session ingest total" instructions of one run under callgrind.
count() {
  local n=$1 state=$work/run-$1
  mkdir -p "$state"
  cat > "$state/gatehouse.toml" <<TOML
[gateway]
state = "sqlite:$state/var/gatehouse.db"
recordings = "$state/var/recordings"
[listen]
postgres = "127.0.0.1:0"
[[connection]]
name = "$DB"
protocol = "postgres"
address = "127.0.0.1:5432"
database = "$DB"
username = "postgres"
tls = "disable"
groups = ["bench"]
TOML
  local token
  token=$("$BIN" --config "$state/gatehouse.toml" token create --identity bench --group bench 2>/dev/null)
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$state/cg.out" \
    "$BIN" serve --config "$state/gatehouse.toml" >/dev/null 2>"$state/gw.log" &
  gw_pid=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$state/gw.log" && break; sleep 0.2; done
  local port
  port=$(sed -n 's/.*postgres listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$state/gw.log")
  PGPASSWORD=$token PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$port" -U bench -n -S -M simple \
    -c 1 -t "$n" "$DB" >"$state/pgbench.log" 2>&1 || { cat "$state/pgbench.log" >&2; return 1; }
  sleep 2
  kill -INT "$gw_pid"
  wait "$gw_pid" 2>/dev/null || true
  # One file per thread: the runtime's workers run the sessions, the ingest thread fills the
  # store from the journal (the main thread's start-up ingest is left out).
  local f w=0 i=0 t=0 n
  for f in "$state"/cg.out-*; do
    n=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    t=$((t + ${n:-0}))
    if grep -q 'multi_thread::worker::run' "$f"; then
      w=$((w + ${n:-0}))
    elif grep -q 'Writer::ingest' "$f" && ! grep -q 'gatehouse::main' "$f"; then
      i=$((i + ${n:-0}))
    fi
  done
  echo "$w $i $t"
}

read -r s1 i1 t1 < <(count "$SHORT")
read -r s2 i2 t2 < <(count "$LONG")
per() { awk -v a="$1" -v b="$2" -v n="$((LONG - SHORT))" 'BEGIN {printf "%.1fk", (b - a) / n / 1000}'; }
echo "instructions per statement (pgbench -S -c 1, ($LONG - $SHORT) statements):" \
  "workers $(per "$s1" "$s2"), audit ingest $(per "$i1" "$i2"), whole process $(per "$t1" "$t2")"
