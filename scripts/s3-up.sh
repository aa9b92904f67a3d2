#!/usr/bin/env bash
# Starts versitygw, an S3-compatible server, on 127.0.0.1 with every file under DIR: objects
# go to DIR/data (one directory per bucket). Writes DIR/env (credentials, region and endpoint
# URL as shell assignments, for `set -a; source DIR/env` or for internal/s3test), DIR/pid and
# DIR/port, and waits until the server responds. Stop it with s3-down.sh DIR.
#
# Run again on the same DIR after s3-down.sh, it restarts on the same port with the same
# credentials and objects, so clients configured from DIR/env keep working.
#
# With --watch-pid PID, a watchdog runs s3-down.sh DIR --purge once process PID exits (see
# lib/watchdog.sh).
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$scripts/lib/watchdog.sh"
parse_watch_pid "$@"
shift "$nargs"
dir=${1:?usage: s3-up.sh [--watch-pid PID] DIR}
mkdir -p "$dir/data"
dir=$(cd "$dir" && pwd)
versitygw=$("$scripts/s3-tools.sh")

if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "s3-up: versitygw already runs in $dir with pid $(cat "$dir/pid"); stop it with s3-down.sh $dir" >&2
  exit 1
fi

# Credentials are made once per DIR and kept for restarts. They guard a loopback test
# server only.
if [ ! -f "$dir/credentials" ]; then
  (umask 077; printf '%s %s\n' "test$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" \
    "$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/credentials")
fi
read -r access_key secret_key <"$dir/credentials"

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# responds PORT: true once an HTTP server replies on PORT. Plain bash, so no HTTP client
# needs to be installed.
responds() {
  local reply
  reply=$(timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -c 5 <&3' _ "$1" 2>/dev/null) || return 1
  [ "$reply" = "HTTP/" ]
}

# start PORT: starts the server on PORT and waits up to 10 s for it to respond. Returns 1
# if it exits first, for example because another process took the port.
start() {
  local port=$1
  ROOT_ACCESS_KEY_ID=$access_key ROOT_SECRET_ACCESS_KEY=$secret_key \
    "$versitygw" --port "127.0.0.1:$port" --quiet posix "$dir/data" \
    >>"$dir/versitygw.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    if responds "$port"; then
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
  start_watchdog "$watch_pid" "$dir" "$scripts/s3-down.sh" "$dir" --purge
fi

ports=()
[ -f "$dir/port" ] && ports+=("$(cat "$dir/port")")
for _ in 1 2 3 4 5; do ports+=($((20000 + RANDOM % 30000))); done

for port in "${ports[@]}"; do
  port_is_free "$port" || continue
  if start "$port"; then
    cat >"$dir/env" <<ENV
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
AWS_REGION=us-east-1
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port
SCHEDULERD_S3_ENDPOINT=http://127.0.0.1:$port
SCHEDULERD_S3_PATH_STYLE=true
ENV
    echo "http://127.0.0.1:$port"
    exit 0
  fi
done

echo "s3-up: versitygw did not start; the end of $dir/versitygw.log follows" >&2
tail -n 20 "$dir/versitygw.log" >&2 || true
exit 1
