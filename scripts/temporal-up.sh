#!/usr/bin/env bash
# Starts the Temporal development server (the Temporal CLI's `server start-dev`, SQLite
# storage, no web UI) on 127.0.0.1 with every file under DIR. Writes DIR/pid, DIR/port (the
# gRPC frontend that SDK clients dial) and DIR/env (SCHEDULERD_TEMPORAL_ADDRESS as a shell
# assignment), and waits until the frontend accepts connections. Stop it with
# temporal-down.sh DIR.
#
# Run again on the same DIR after temporal-down.sh, it restarts on the same port with the
# same database, so workflows survive the restart as they would on a production cluster.
#
# With --watch-pid PID, a watchdog runs temporal-down.sh DIR --purge once process PID exits
# (see lib/watchdog.sh).
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$scripts/lib/watchdog.sh"
parse_watch_pid "$@"
shift "$nargs"
dir=${1:?usage: temporal-up.sh [--watch-pid PID] DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
source "$scripts/lib/free-port.sh"
temporal=$("$scripts/temporal-tools.sh")

if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "temporal-up: the server already runs in $dir with pid $(cat "$dir/pid"); stop it with temporal-down.sh $dir" >&2
  exit 1
fi

listens() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start PORT: starts the server with its frontend on PORT and its HTTP API and metrics on
# other free loopback ports, and waits up to 60 s for the frontend. Returns 1 if the server
# exits first, for example because another process took a port.
start() {
  local port=$1 http_port metrics_port
  http_port=$(free_port)
  metrics_port=$(free_port)
  "$temporal" server start-dev --headless --ip 127.0.0.1 --port "$port" \
    --http-port "$http_port" --metrics-port "$metrics_port" \
    --db-filename "$dir/temporal.db" --log-level warn \
    >>"$dir/temporal.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do
    if listens "$port"; then
      echo "$pid" >"$dir/pid"
      echo "$port" >"$dir/port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  return 1
}

if [ -n "$watch_pid" ]; then
  start_watchdog "$watch_pid" "$dir" "$scripts/temporal-down.sh" "$dir" --purge
fi

ports=()
[ -f "$dir/port" ] && ports+=("$(cat "$dir/port")")
for _ in 1 2 3; do ports+=("$(free_port)"); done

for port in "${ports[@]}"; do
  listens "$port" && continue
  if start "$port"; then
    echo "SCHEDULERD_TEMPORAL_ADDRESS=127.0.0.1:$port" >"$dir/env"
    echo "127.0.0.1:$port"
    exit 0
  fi
done

echo "temporal-up: the Temporal server did not start; the end of $dir/temporal.log follows" >&2
tail -n 20 "$dir/temporal.log" >&2 || true
exit 1
