# stop_pid PID SIGNAL NAME DIR: sends SIGNAL to PID, waits up to 30 s for it to exit, then
# sends KILL and waits again. Only ever called with PIDs that the project's own scripts
# recorded. A PID is free for reuse once its process has exited, and other servers of the
# same program may run beside this one. So the process is signalled only while its command
# line contains DIR, the absolute directory that the start script gave it. NAME appears in
# messages only. Returns 1 if the process still runs after KILL.
stop_pid() {
  local pid=$1 signal=$2 name=$3 dir=$4
  pid_running "$pid" || return 0
  if ! pid_owned "$pid" "$dir"; then
    echo "stop: pid $pid no longer runs $name of $dir; not signalled" >&2
    return 0
  fi
  kill -"$signal" "$pid" 2>/dev/null || return 0
  pid_wait_exit "$pid" 300 && return 0
  echo "stop: $name (pid $pid) did not exit within 30 s of SIG$signal; sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  pid_wait_exit "$pid" 50 && return 0
  echo "stop: $name (pid $pid) still runs 5 s after KILL" >&2
  return 1
}

# pid_running PID: true while PID exists and is not a zombie. A zombie has exited and only
# waits for its parent to reap it.
pid_running() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# pid_owned PID DIR: true if PID's command line contains DIR followed by "/" or a space, so
# that DIR=/tmp/a does not match a process of /tmp/ab.
pid_owned() {
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline " == *"$2/"* || "$cmdline " == *"$2 "* ]]
}

# pid_wait_exit PID TENTHS: waits up to TENTHS tenths of a second for PID to exit.
pid_wait_exit() {
  local _
  for _ in $(seq "$2"); do
    pid_running "$1" || return 0
    sleep 0.1
  done
  ! pid_running "$1"
}
