#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 on 127.0.0.1 with every file under DIR, and writes its
# connection URL to DIR/url. PostgreSQL refuses to run as root, so as root the server runs
# as the postgres system user, in a directory that user owns. Stop it with pg-down.sh DIR.
# fsync is off: the data is for tests and demos only and does not survive a machine crash.
# With --watch-pid PID, a watchdog runs pg-down.sh DIR --purge once process PID exits (see
# lib/watchdog.sh).
set -euo pipefail

source "$(dirname "$0")/lib/watchdog.sh"
parse_watch_pid "$@"
shift "$nargs"
if [ $# -ne 1 ]; then
  echo "usage: pg-up.sh [--watch-pid PID] DIR" >&2
  exit 2
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ -f "$dir/data/postmaster.pid" ]; then
  running=$(head -n 1 "$dir/data/postmaster.pid")
  if kill -0 "$running" 2>/dev/null; then
    echo "pg-up: a server already runs in $dir (pid $running); stop it with pg-down.sh $dir" >&2
    exit 1
  fi
fi

bindir=${SCHEDULERD_PG_BINDIR:-/usr/lib/postgresql/15/bin}
if [ ! -x "$bindir/initdb" ]; then
  echo "pg-up: no PostgreSQL 15 server in $bindir; run 'make setup' (installs Debian's postgresql) or set SCHEDULERD_PG_BINDIR" >&2
  exit 1
fi

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    echo "pg-up: user postgres cannot reach $dir; make its parent folders readable to all (chmod 755)" >&2
    exit 1
  fi
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
  as_postgres "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
fi

source "$(dirname "$0")/lib/free-port.sh"
if [ -n "$watch_pid" ]; then
  start_watchdog "$watch_pid" "$dir" "$(cd "$(dirname "$0")" && pwd)/pg-down.sh" "$dir" --purge
fi

# The server start fails cleanly if another process takes the port first; then the next
# port is tried.
for _ in 1 2 3 4 5; do
  port=$(free_port)
  if as_postgres "$bindir/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/postgres.log" -o "\
      -c listen_addresses=127.0.0.1 -p $port -k $dir \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c max_connections=${SCHEDULERD_PG_MAX_CONNECTIONS:-300} \
      -c shared_buffers=${SCHEDULERD_PG_SHARED_BUFFERS:-256MB}" >/dev/null; then
    head -n 1 "$dir/data/postmaster.pid" >"$dir/pid"
    echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" >"$dir/url"
    cat "$dir/url"
    exit 0
  fi
  # pg_ctl also fails when the server started but was not ready within its timeout. That
  # server keeps running without DIR/pid, where pg-down.sh looks, so it is stopped here.
  if as_postgres "$bindir/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
    echo "pg-up: PostgreSQL started but was not ready in time; stopping it" >&2
    as_postgres "$bindir/pg_ctl" stop -w -t 60 -m immediate -D "$dir/data" >/dev/null || true
    break
  fi
done

echo "pg-up: PostgreSQL did not start; the end of $dir/postgres.log follows" >&2
tail -n 20 "$dir/postgres.log" >&2 || true
exit 1
