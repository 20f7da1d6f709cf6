#!/usr/bin/env bash
# sysbench oltp_point_select (server-side prepared statements), direct to MariaDB, through a
# pure TCP relay (haproxy: the ceiling any proxy has on this machine) and through Gatehouse
# (auditing and recording on), alternating in one run, at THREADS threads and at one; prints
# medians, Gatehouse against the relay (issue 15's targets: >= 0.90 of its throughput, CPU per
# query <= 1.5x its CPU, one thread's added latency <= its own + 20 us), and each proxy's CPU
# per query by thread (steadier than throughput on a shared machine).
#
#   bash benches/e2e/sysbench.sh           # defaults below
#   ROUNDS=5 SECONDS_PER_RUN=10 THREADS=8 bash benches/e2e/sysbench.sh
#   CARGO_LOCK=/tmp/cargo.lock bash benches/e2e/sysbench.sh   # build under flock
#   BIN=/path/to/other/gatehouse bash benches/e2e/sysbench.sh   # another build, same run
#
# Needs the local MariaDB on 127.0.0.1:3306 with a passwordless root over TCP
# (scripts/setup.sh starts it and installs sysbench).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
THREADS=${THREADS:-8}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
DB=gh_sysbench

bash scripts/setup.sh >/dev/null
if [ -z "${BIN:-}" ]; then
  ${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build --release -q -p gatehouse
  BIN=./target/release/gatehouse
fi
work=$(mktemp -d)
cleanup() {
  if [ -n "${gw_pid:-}" ]; then
    kill "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
  fi
  [ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sb_common=(--mysql-host=127.0.0.1 --tables="$TABLES" --table-size="$TABLE_SIZE")

# The tables, once, directly as root.
have=$(mysql -h 127.0.0.1 -P 3306 -u root -N -B -e \
  "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$DB' AND table_name LIKE 'sbtest%'")
rows=$(mysql -h 127.0.0.1 -P 3306 -u root -N -B -e \
  "SELECT IFNULL(MAX(id), 0) FROM $DB.sbtest1" 2>/dev/null || echo 0)
if [ "$have" != "$TABLES" ] || [ "$rows" != "$TABLE_SIZE" ]; then
  mysql -h 127.0.0.1 -P 3306 -u root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
  sysbench oltp_point_select "${sb_common[@]}" --mysql-port=3306 --mysql-user=root \
    --mysql-db="$DB" prepare >/dev/null
fi

# Gatehouse, plain TCP both sides (a loopback listener takes tokens in clear), auditing and
# recording as always.
cat > "$work/gatehouse.toml" <<TOML
[gateway]
state = "sqlite:$work/var/gatehouse.db"
recordings = "$work/var/recordings"
[listen]
mysql = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[connection]]
name = "$DB"
protocol = "mysql"
address = "127.0.0.1:3306"
database = "$DB"
username = "root"
tls = "disable"
groups = ["bench"]
TOML
"$BIN" serve --config "$work/gatehouse.toml" >/dev/null 2>"$work/gw.log" &
gw_pid=$!
for _ in $(seq 1 100); do grep -q "admin listening on" "$work/gw.log" && break; sleep 0.1; done
gw_port=$(sed -n 's/.*mysql listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/gw.log")
admin_port=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/gw.log")
[ -n "$gw_port" ] || { echo "gatehouse did not start:"; cat "$work/gw.log"; exit 1; }
token=$("$BIN" --config "$work/gatehouse.toml" token create --identity bench --group bench 2>/dev/null)

. benches/e2e/tcp_relay.sh
start_tcp_relay "$work" 3306
. benches/e2e/cpu.sh

run() { # target threads -> "tps latency_ms queries proxy_cpu_ticks"
  local target=$1 threads=$2 port user pass out pid= before
  case $target in
    direct)    port=3306;        user=root;  pass= ;;
    relay)     port=$relay_port; user=root;  pass=;       pid=$relay_pid ;;
    gatehouse) port=$gw_port;    user=bench; pass=$token; pid=$gw_pid ;;
  esac
  before=${pid:+$(cpu_ticks "$pid")}
  # libmariadb loads the clear-password plugin lazily and races when threads log in at once.
  out=$(LIBMYSQL_PLUGINS=mysql_clear_password sysbench oltp_point_select "${sb_common[@]}" \
      --mysql-port="$port" --mysql-user="$user" --mysql-password="$pass" --mysql-db="$DB" \
      --threads="$threads" --time="$SECONDS_PER_RUN" run 2>&1) \
    || { echo "sysbench through $target failed:" >&2; echo "$out" >&2; return 1; }
  if ! echo "$out" | grep -Eq 'ignored errors: +0 '; then
    echo "sysbench through $target had errors:" >&2; echo "$out" >&2; return 1
  fi
  echo "$out" | awk -v ticks="${pid:+$(( $(cpu_ticks "$pid") - before ))}" '
      /transactions:/ {tps=substr($3, 2)} /queries:/ && !q {q=$2}
      /avg:/ {lat=$2} END {print tps, lat, q, ticks + 0}'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "sysbench oltp_point_select, $TABLES tables x $TABLE_SIZE rows, $THREADS threads and 1," \
     "${SECONDS_PER_RUN}s per run, $ROUNDS rounds, alternating"
declare -A tps lat ops ticks
queries_through_gatehouse=0
thread_ticks "$gw_pid" > "$work/gw-threads.before"
appends_before=$(journal_appends "$admin_port")
for threads in "$THREADS" 1; do
  for round in $(seq 1 "$ROUNDS"); do
    for target in direct relay gatehouse; do
      result=$(run "$target" "$threads")
      read -r t l q c <<<"$result"
      tps[$target,$threads]+="$t "
      lat[$target,$threads]+="$l "
      ops[$target,$threads]=$(( ${ops[$target,$threads]:-0} + q ))
      ticks[$target,$threads]=$(( ${ticks[$target,$threads]:-0} + c ))
      if [ "$target" = gatehouse ]; then
        queries_through_gatehouse=$((queries_through_gatehouse + q))
      fi
      printf '  round %d  %-9s  %2d threads  %10.1f tps  %7.3f ms\n' "$round" "$target" "$threads" "$t" "$l"
    done
  done
  # The gateway's threads, over its many-thread runs only.
  [ "$threads" = "$THREADS" ] && thread_ticks "$gw_pid" > "$work/gw-threads.after" \
    && appends_after=$(journal_appends "$admin_port")
done

echo
for threads in "$THREADS" 1; do
  for target in direct relay gatehouse; do
    mt=$(echo ${tps[$target,$threads]} | tr ' ' '\n' | median)
    ml=$(echo ${lat[$target,$threads]} | tr ' ' '\n' | median)
    [ "$threads" = 1 ] && eval "T_${target}_1=$mt; L_${target}_1=$ml" || eval "T_${target}=$mt; L_${target}=$ml"
    printf 'median  %-9s  %2d threads  %10.1f tps  %7.3f ms\n' "$target" "$threads" "$mt" "$ml"
  done
done
echo
awk -v d="$T_direct" -v r="$T_relay" -v g="$T_gatehouse" 'BEGIN {
  printf "%s threads: gatehouse/direct TPS = %.3f   tcp relay/direct = %.3f\n", "'"$THREADS"'", g / d, r / d
  printf "           gatehouse/tcp relay TPS = %.3f (target >= 0.90: %s)\n", g / r, (g / r >= 0.90 ? "met" : "NOT met") }'
awk -v d="$L_direct_1" -v r="$L_relay_1" -v g="$L_gatehouse_1" 'BEGIN {
  a = (g - d) * 1000; b = (r - d) * 1000
  printf "1 thread: added latency per query: gatehouse %+.0f us, tcp relay %+.0f us (gatehouse - relay %+.0f us; target <= +20: %s)\n",
    a, b, a - b, (a - b <= 20 ? "met" : "NOT met") }'
cpu_summary "query at $THREADS threads" "$work/gw-threads.before" "$work/gw-threads.after" \
  gatehouse "${ticks[gatehouse,$THREADS]}" "${ops[gatehouse,$THREADS]}" \
  "tcp relay" "${ticks[relay,$THREADS]}" "${ops[relay,$THREADS]}"
appends_summary "query at $THREADS threads" "$appends_before" "$appends_after" "${ops[gatehouse,$THREADS]}"
# The store is filled from the journal behind the traffic: stop the gateway (it flushes on
# SIGTERM), then the newest entry's id counts the entries (ids are dense and start at 1).
kill -TERM "$gw_pid"
wait "$gw_pid" || true
gw_pid=
entries=$("$BIN" --config "$work/gatehouse.toml" audit list --limit 1 --json \
  | python3 -c 'import json,sys; e=json.load(sys.stdin); print(e[0]["id"] if e else 0)')
echo "audit entries written by gatehouse during the run: $entries (sysbench counted $queries_through_gatehouse queries through it)"
