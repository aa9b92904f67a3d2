# stop_pid PID SIGNAL NAME: sends SIGNAL to PID, waits up to 30 s for it to exit, then
# sends KILL. Only ever called with PIDs that the project's own scripts recorded.
stop_pid() {
  local pid=$1 signal=$2 name=$3
  kill -0 "$pid" 2>/dev/null || return 0
  kill -"$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "stop: $name (pid $pid) did not exit within 30 s of SIG$signal; sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
