# start_watchdog PID DIR COMMAND...: runs COMMAND once process PID has exited, so that a
# test binary that panics, times out or is interrupted does not leave its server running.
# The watchdog runs in a session of its own and ignores SIGINT and SIGHUP, so the Ctrl-C
# that ends the test does not end it. Its PID goes to DIR/watchdog.pid, and DIR is in its
# command line, so that the stop scripts can stop it with stop_pid. It removes that file
# before it runs COMMAND, so that COMMAND does not signal the watchdog that runs it. A
# watchdog whose server failed to start still runs COMMAND when PID exits.
start_watchdog() {
  local pid=$1 dir=$2
  shift 2
  # shellcheck disable=SC2016 # expanded by the watchdog's bash
  setsid bash -c '
    trap "" INT HUP
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    echo "process $1 exited; stopping the server in $2"
    rm -f "$2/watchdog.pid"
    shift 2
    exec "$@"
  ' watchdog "$pid" "$dir" "$@" </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

# parse_watch_pid ARGS...: sets watch_pid from a leading "--watch-pid PID" and nargs to
# the number of arguments it used (0 or 2). Exits 2 if PID does not run.
parse_watch_pid() {
  watch_pid="" nargs=0
  [ "${1:-}" = --watch-pid ] || return 0
  watch_pid=${2:-}
  nargs=2
  if ! [[ "$watch_pid" =~ ^[0-9]+$ ]] || ! kill -0 "$watch_pid" 2>/dev/null; then
    echo "--watch-pid ${watch_pid}: no such process" >&2
    exit 2
  fi
}
