#!/usr/bin/env bash
# SSH through Gatehouse vs direct to the same OpenSSH sshd, alternating in one run: throughput
# of a 256 MiB upload and download (scp, which speaks SFTP) and the round trip of a trivial
# exec (`ssh host true`, a whole login each time, and one channel per exec over one logged-in
# connection, from paramiko).
# Prints medians and the ratios; auditing, masking and recording are on as always.
#
#   bash benches/e2e/ssh.sh
#   ROUNDS=5 SIZE_MIB=256 EXECS=20 bash benches/e2e/ssh.sh
#   CARGO_LOCK=/tmp/cargo.lock bash benches/e2e/ssh.sh   # build under flock
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
EXECS=${EXECS:-20}
TARGET_RATIO=${TARGET_RATIO:-0.8}

bash scripts/setup.sh >/dev/null
${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build --release -q -p gatehouse
work=$(mktemp -d)
cleanup() {
  for pid in ${gw_pid:-} ${sshd_pid:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A private sshd: its own host key; only the gateway's key (also used for "direct") logs in.
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/gw_key"
cp "$work/gw_key.pub" "$work/authorized_keys"
mkdir -p /run/sshd
sshd_port=$(free_port)
cat > "$work/sshd_config" <<CONF
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" &
sshd_pid=$!

cat > "$work/gatehouse.toml" <<TOML
[gateway]
state = "sqlite:$work/var/gatehouse.db"
recordings = "$work/var/recordings"
[listen]
ssh = "127.0.0.1:0"
[[connection]]
name = "box"
protocol = "ssh"
address = "127.0.0.1:$sshd_port"
username = "root"
private_key = { file = "$work/gw_key" }
host_key = "$(cat "$work/host_key.pub")"
groups = ["bench"]
[[mask]]
name = "pan"
detect = "pan"
style = "keep-last-4"
TOML
./target/release/gatehouse serve --config "$work/gatehouse.toml" >/dev/null 2>"$work/gw.log" &
gw_pid=$!
for _ in $(seq 1 100); do grep -q "ssh listening on" "$work/gw.log" && break; sleep 0.1; done
gw_port=$(sed -n 's/.*ssh listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/gw.log")
[ -n "$gw_port" ] || { echo "gatehouse did not start:"; cat "$work/gw.log"; exit 1; }
export SSHPASS
SSHPASS=$(./target/release/gatehouse --config "$work/gatehouse.toml" token create --identity bench --group bench 2>/dev/null)

opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
head -c "${SIZE_MIB}M" /dev/urandom > "$work/payload"

# Each target as (prefix command, port, user, extra options).
client() { # target program args... ; runs program against the target
  local target=$1 program=$2; shift 2
  case $target in
    direct)    "$program" "${opts[@]}" -o IdentitiesOnly=yes -i "$work/gw_key" "$@" ;;
    gatehouse) sshpass -e "$program" "${opts[@]}" -o PubkeyAuthentication=no "$@" ;;
  esac
}
port_of() { [ "$1" = direct ] && echo "$sshd_port" || echo "$gw_port"; }
user_of() { [ "$1" = direct ] && echo root || echo box; }
now() { date +%s.%N; }

transfer() { # target up|down -> MiB/s
  local target=$1 dir=$2 port user t0 t1
  port=$(port_of "$target"); user=$(user_of "$target")
  rm -f "$work/remote" "$work/back"
  if [ "$dir" = down ]; then cp "$work/payload" "$work/remote"; fi
  t0=$(now)
  if [ "$dir" = up ]; then
    client "$target" scp -q -P "$port" "$work/payload" "$user@127.0.0.1:$work/remote"
  else
    client "$target" scp -q -P "$port" "$user@127.0.0.1:$work/remote" "$work/back"
  fi
  t1=$(now)
  local got; got=$([ "$dir" = up ] && echo "$work/remote" || echo "$work/back")
  cmp -s "$work/payload" "$got" || { echo "transfer $dir through $target corrupted the file" >&2; exit 1; }
  awk -v s="$SIZE_MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", s / (b - a) }'
}

exec_login() { # target -> ms per `ssh host true` (a whole login each time)
  local target=$1 port user t0 t1
  port=$(port_of "$target"); user=$(user_of "$target")
  t0=$(now)
  for _ in $(seq 1 "$EXECS"); do client "$target" ssh -p "$port" "$user@127.0.0.1" true; done
  t1=$(now)
  awk -v n="$EXECS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }'
}

exec_mux() { # target -> ms per exec over one logged-in connection (paramiko, one channel each)
  local target=$1
  python3 - "$target" "$(port_of "$target")" "$(user_of "$target")" "$work/gw_key" "$EXECS" <<'PY'
import sys, time, paramiko
target, port, user, key, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
if target == "direct":
    c.connect("127.0.0.1", port, user, key_filename=key, look_for_keys=False, allow_agent=False)
else:
    import os
    c.connect("127.0.0.1", port, user, password=os.environ["SSHPASS"], look_for_keys=False, allow_agent=False)
c.exec_command("true")[1].channel.recv_exit_status()  # warm
t0 = time.monotonic()
for _ in range(n):
    _, out, _ = c.exec_command("true")
    if out.channel.recv_exit_status() != 0:
        sys.exit("exec failed")
print("%.2f" % ((time.monotonic() - t0) * 1000 / n))
c.close()
PY
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "ssh: ${SIZE_MIB} MiB scp up and down, $EXECS execs per run, $ROUNDS rounds, alternating"
declare -A res
for round in $(seq 1 "$ROUNDS"); do
  for target in direct gatehouse; do
    up=$(transfer "$target" up); down=$(transfer "$target" down)
    login=$(exec_login "$target"); mux=$(exec_mux "$target")
    res[$target.up]+="$up "; res[$target.down]+="$down "
    res[$target.login]+="$login "; res[$target.channel]+="$mux "
    printf '  round %d  %-9s  up %7.1f MiB/s  down %7.1f MiB/s  exec %7.2f ms (login)  %6.2f ms (channel)\n' \
      "$round" "$target" "$up" "$down" "$login" "$mux"
  done
done
echo
for m in up down login channel; do
  d=$(echo ${res[direct.$m]} | tr ' ' '\n' | median)
  g=$(echo ${res[gatehouse.$m]} | tr ' ' '\n' | median)
  case $m in
    up|down) awk -v m="$m" -v d="$d" -v g="$g" -v want="$TARGET_RATIO" 'BEGIN {
      r = g / d; printf "transfer %-4s  direct %7.1f MiB/s  gatehouse %7.1f MiB/s  ratio %.2f (target >= %.2f: %s)\n",
        m, d, g, r, want, (r >= want ? "met" : "NOT met") }' ;;
    *) awk -v m="$m" -v d="$d" -v g="$g" 'BEGIN {
      printf "exec %-5s     direct %7.2f ms     gatehouse %7.2f ms     ratio %.2f (added %+.2f ms)\n",
        m, d, g, g / d, g - d }' ;;
  esac
done
