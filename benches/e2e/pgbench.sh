#!/usr/bin/env bash
# pgbench select-only, direct to PostgreSQL, through a pure TCP relay (haproxy: the ceiling any
# proxy has on this machine), through pgbouncer (session mode) and through Gatehouse (auditing
# and recording on), alternating in one run; prints medians and ratios, and each proxy's CPU
# per statement (steadier than throughput on a shared machine).
#
#   bash benches/e2e/pgbench.sh            # defaults below
#   ROUNDS=5 SECONDS_PER_RUN=10 MODE=prepared bash benches/e2e/pgbench.sh
#   BIN=/path/to/other/gatehouse bash benches/e2e/pgbench.sh   # another build, same run
#
# Needs the local PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh starts it and installs
# pgbench and pgbouncer).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
MODE=${MODE:-simple}
SCALE=${SCALE:-10}
DB=gh_bench

bash scripts/setup.sh >/dev/null
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p gatehouse
  BIN=./target/release/gatehouse
fi
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null || true
  [ -n "${bouncer_pid:-}" ] && kill "$bouncer_pid" 2>/dev/null || true
  [ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $DB"
  pgbench -h 127.0.0.1 -U postgres -i -q -s "$SCALE" "$DB" >/dev/null 2>&1
fi

# Gatehouse, plain TCP both sides like pgbouncer, auditing and recording as always.
cat > "$work/gatehouse.toml" <<TOML
[gateway]
state = "sqlite:$work/var/gatehouse.db"
recordings = "$work/var/recordings"
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
"$BIN" serve --config "$work/gatehouse.toml" >/dev/null 2>"$work/gw.log" &
gw_pid=$!
for _ in $(seq 1 100); do grep -q "admin listening on" "$work/gw.log" && break; sleep 0.1; done
gw_port=$(sed -n 's/.*postgres listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/gw.log")
admin_port=$(sed -n 's/.*admin listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/gw.log")
token=$("$BIN" --config "$work/gatehouse.toml" token create --identity bench --group bench 2>/dev/null)

# pgbouncer in session mode.
pb_port=$(free_port)
cat > "$work/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=5432 dbname=$DB user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pb_port
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
unix_socket_dir =
logfile = $work/pgbouncer.log
INI
echo '"postgres" ""' > "$work/userlist.txt"
chown -R postgres "$work" 2>/dev/null || true
if [ "$(id -u)" = 0 ]; then
  pgbouncer -u postgres "$work/pgbouncer.ini" >/dev/null 2>&1 & bouncer_pid=$!
else
  pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 & bouncer_pid=$!
fi
for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$pb_port" && break; sleep 0.1; done

# The pure TCP relay.
. benches/e2e/tcp_relay.sh
start_tcp_relay "$work" 5432
. benches/e2e/cpu.sh

run() { # target clients -> "tps latency_ms transactions proxy_cpu_ticks"
  local target=$1 clients=$2 port user pass pid= before out
  case $target in
    direct)    port=5432;        user=postgres; pass= ;;
    relay)     port=$relay_port; user=postgres; pass=;       pid=$relay_pid ;;
    pgbouncer) port=$pb_port;    user=postgres; pass=;       pid=$bouncer_pid ;;
    gatehouse) port=$gw_port;    user=bench;    pass=$token; pid=$gw_pid ;;
  esac
  before=${pid:+$(cpu_ticks "$pid")}
  out=$(PGPASSWORD=$pass PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -S \
      -M "$MODE" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$SECONDS_PER_RUN" "$DB" 2>&1)
  echo "$out" | awk -v ticks="${pid:+$(( $(cpu_ticks "$pid") - before ))}" '
      /latency average/ {lat=$4} /^tps/ {tps=$3}
      /actually processed/ {split($NF, n, "/"); tx=n[1]}
      END {print tps, lat, tx, ticks + 0}'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "pgbench -S -M $MODE, scale $SCALE, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds, alternating"
declare -A tps lat ops ticks
thread_ticks "$gw_pid" > "$work/gw-threads.before"
appends_before=$(journal_appends "$admin_port")
for clients in 8 1; do
  for round in $(seq 1 "$ROUNDS"); do
    for target in direct relay pgbouncer gatehouse; do
      read -r t l n c < <(run "$target" "$clients")
      tps[$target,$clients]+="$t "
      lat[$target,$clients]+="$l "
      ops[$target,$clients]=$(( ${ops[$target,$clients]:-0} + n ))
      ticks[$target,$clients]=$(( ${ticks[$target,$clients]:-0} + c ))
      printf '  round %d  %-9s  %2d clients  %10.1f tps  %7.3f ms\n' "$round" "$target" "$clients" "$t" "$l"
    done
  done
  # The gateway's threads, over its 8-client runs only (it idles between its runs).
  [ "$clients" = 8 ] && thread_ticks "$gw_pid" > "$work/gw-threads.after" \
    && appends_after=$(journal_appends "$admin_port")
done

echo
for clients in 8 1; do
  for target in direct relay pgbouncer gatehouse; do
    mt=$(echo ${tps[$target,$clients]} | tr ' ' '\n' | median)
    ml=$(echo ${lat[$target,$clients]} | tr ' ' '\n' | median)
    eval "T_${target}_${clients}=$mt; L_${target}_${clients}=$ml"
    printf 'median  %-9s  %2d clients  %10.1f tps  %7.3f ms\n' "$target" "$clients" "$mt" "$ml"
  done
done
echo
awk -v d="$T_direct_8" -v r="$T_relay_8" -v b="$T_pgbouncer_8" -v g="$T_gatehouse_8" 'BEGIN {
  printf "8 clients: gatehouse/direct TPS = %.3f   pgbouncer/direct = %.3f   tcp relay/direct = %.3f\n",
    g/d, b/d, r/d
  printf "           gatehouse/tcp relay TPS = %.3f (target >= 0.90: %s), gatehouse/pgbouncer = %.3f (target >= 1: %s)\n",
    g/r, (g/r >= 0.90 ? "met" : "NOT met"), g/b, (g >= b ? "met" : "NOT met") }'
awk -v d="$L_direct_1" -v r="$L_relay_1" -v b="$L_pgbouncer_1" -v g="$L_gatehouse_1" 'BEGIN {
  printf "1 client: added latency per query: gatehouse %+.1f us, pgbouncer %+.1f us, tcp relay %+.1f us (gatehouse - relay %+.1f us; target <= +20: %s)\n",
    (g-d)*1000, (b-d)*1000, (r-d)*1000, (g-r)*1000, ((g-r)*1000 <= 20 ? "met" : "NOT met") }'
cpu_summary "statement at 8 clients" "$work/gw-threads.before" "$work/gw-threads.after" \
  gatehouse "${ticks[gatehouse,8]}" "${ops[gatehouse,8]}" \
  pgbouncer "${ticks[pgbouncer,8]}" "${ops[pgbouncer,8]}" \
  "tcp relay" "${ticks[relay,8]}" "${ops[relay,8]}"
appends_summary "statement at 8 clients" "$appends_before" "$appends_after" "${ops[gatehouse,8]}"
entries=$("$BIN" --config "$work/gatehouse.toml" audit list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "audit entries written by gatehouse during the run: $entries"
