#!/usr/bin/env bash
# Sourced by test.sh and bench.sh (after scripts/lib.sh): start a throwaway PostgreSQL and Redis
# on free loopback ports unless TEST_DATABASE_URL / TEST_REDIS_URL are set, installing Debian's
# postgresql or redis-server with apt when missing. The servers stop when the sourcing script
# exits, whatever its outcome.
find_pg_bin() {
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
  [ -n "$PG_BIN" ]
}

free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

RUN_DIR=""
PG_STARTED=""
REDIS_PID=""
cleanup() {
  set +e
  if [ -n "$PG_STARTED" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$RUN_DIR/pg" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
  [ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

# pg_ctl and initdb refuse to run as root: run them as the postgres user then (runuser is in
# /usr/sbin, which a PATH of /usr/bin:/bin lacks).
as_pg() {
  if [ "$(id -u)" = 0 ]; then PATH=$PATH:/usr/sbin:/sbin runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local port; port=$(free_port)
  mkdir -p "$RUN_DIR/pg"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$RUN_DIR"
  log "starting PostgreSQL on 127.0.0.1:$port"
  as_pg "$PG_BIN/initdb" -D "$RUN_DIR/pg" -U postgres -A trust --no-sync >/dev/null || return 1
  PG_STARTED=1
  as_pg "$PG_BIN/pg_ctl" -D "$RUN_DIR/pg" -l "$RUN_DIR/pg.log" -w -o \
    "-p $port -k $RUN_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB" \
    start >/dev/null || { cat "$RUN_DIR/pg.log" >&2; return 1; }
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

start_redis() {
  local port; port=$(free_port)
  log "starting Redis on 127.0.0.1:$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  redis-cli -p "$port" ping >/dev/null || { cat "$RUN_DIR/redis.log" >&2; return 1; }
  export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

# start_services: the servers the tests and benchmarks need; non-zero when one cannot start.
start_services() {
  if [ -n "${TEST_DATABASE_URL:-}" ] && [ -n "${TEST_REDIS_URL:-}" ]; then
    return 0
  fi
  RUN_DIR=$(mktemp -d /tmp/guildbot-services.XXXXXX)
  chmod 755 "$RUN_DIR"
  if [ -z "${TEST_DATABASE_URL:-}" ]; then
    if ! find_pg_bin; then apt_install postgresql && find_pg_bin || return 1; fi
    start_postgres || return 1
  fi
  if [ -z "${TEST_REDIS_URL:-}" ]; then
    if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server || return 1; fi
    start_redis || return 1
  fi
}
