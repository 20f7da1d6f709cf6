#!/usr/bin/env bash
# Installs what the tests and benches need and starts what is down. Idempotent; run as root
# (CI does). Safe to run again: it only acts on what is missing.
set -euo pipefail

need_apt=()
# Building: PostgreSQL's own parser (libpg_query, through the pg_query crate) is compiled from C
# and its bindings made by bindgen, which needs libclang.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so* >/dev/null 2>&1 \
  || need_apt+=(libclang-dev)
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v pgbench >/dev/null || need_apt+=(postgresql-contrib)
[ -x "$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)" ] || need_apt+=(postgresql)
command -v pgbouncer >/dev/null || need_apt+=(pgbouncer)
# The benches' pure TCP relay, the reference for what any proxy costs on the machine.
command -v haproxy >/dev/null || need_apt+=(haproxy)
command -v script >/dev/null || need_apt+=(bsdutils)
command -v runuser >/dev/null || need_apt+=(util-linux)
# The evidence report is rendered by a headless browser in the tests.
command -v chromium >/dev/null || need_apt+=(chromium)
# The MySQL wire's tests and benches: the mysql CLI and mysqldump, sysbench.
command -v mysql >/dev/null || need_apt+=(mariadb-client)
command -v mysqldump >/dev/null || need_apt+=(mariadb-client)
command -v sysbench >/dev/null || need_apt+=(sysbench)
# The SSH wire's tests and benches: their own sshd, the OpenSSH client, rsync, tmux for the pty.
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null || need_apt+=(openssh-client)
command -v rsync >/dev/null || need_apt+=(rsync)
command -v curl >/dev/null || need_apt+=(curl)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v sshpass >/dev/null || need_apt+=(sshpass)
# Peak memory of the export bench.
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# pgbouncer's package starts its own service on 6432; the benches run their own instance.
if pgrep -x pgbouncer >/dev/null && [ -f /etc/pgbouncer/pgbouncer.ini ]; then
  pkill -x pgbouncer || true
fi
# So does haproxy's (with no listeners); the benches run their own.
if pgrep -f /etc/haproxy/haproxy.cfg >/dev/null; then
  pkill -f /etc/haproxy/haproxy.cfg || true
fi

if ! python3 -c 'import psycopg' 2>/dev/null; then
  echo "setup: installing psycopg"
  python3 -m pip install -q --disable-pip-version-check 'psycopg[binary]>=3.1'
fi

if ! python3 -c 'import pymysql' 2>/dev/null; then
  echo "setup: installing PyMySQL"
  python3 -m pip install -q --disable-pip-version-check 'PyMySQL>=1.1'
fi

# Server-side prepared statements from Python (PyMySQL interpolates on the client).
if ! python3 -c 'import mysql.connector' 2>/dev/null; then
  echo "setup: installing mysql-connector-python"
  python3 -m pip install -q --disable-pip-version-check 'mysql-connector-python>=9.0'
fi

# An SSH automation client from Python.
if ! python3 -c 'import paramiko' 2>/dev/null; then
  echo "setup: installing paramiko"
  python3 -m pip install -q --disable-pip-version-check 'paramiko>=3.4'
fi

# Ansible: its modules reach a host as files over SFTP, then run (the SSH file tests).
if ! command -v ansible-playbook >/dev/null; then
  echo "setup: installing ansible-core"
  python3 -m pip install -q --disable-pip-version-check 'ansible-core>=2.15'
fi

# A stock asciicast player (Python asciinema 2.x: `asciinema cat`), to check the SSH terminal
# recordings the gateway writes.
if ! command -v asciinema >/dev/null; then
  echo "setup: installing asciinema"
  python3 -m pip install -q --disable-pip-version-check 'asciinema>=2.3,<3'
fi

# The local servers every machine of this kind runs; start them if they are down.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "setup: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if command -v mariadbd >/dev/null && ! (echo > /dev/tcp/127.0.0.1/3306) 2>/dev/null; then
  echo "setup: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"

# The web console's assets, embedded in the binary at build time.
bash "$(dirname "$0")/console.sh"
