# Sourced by the e2e benches: a pure TCP relay (HAProxy in TCP mode) in front of a server, as
# the reference for what any proxy costs on this machine. It parses nothing, audits nothing and
# records nothing: its ratio to direct is the ceiling a gateway's ratio is measured against.
#
#   start_tcp_relay WORKDIR UPSTREAM_PORT   # sets relay_port and relay_pid

start_tcp_relay() {
  local work=$1 upstream=$2
  relay_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # One thread, like pgbouncer and like one Gatehouse worker's share of the cores.
  cat > "$work/haproxy.cfg" <<CFG
global
  maxconn 2000
  nbthread ${RELAY_THREADS:-1}
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen relay
  bind 127.0.0.1:$relay_port
  server upstream 127.0.0.1:$upstream
CFG
  haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>"$work/haproxy.log" &
  relay_pid=$!
  for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $relay_port), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the TCP relay (haproxy) did not start:" >&2
  cat "$work/haproxy.log" >&2
  return 1
}
