# stop_pid PID SIGNAL NAME: sends SIGNAL to PID, waits up to 30 s for it to exit, then
# sends KILL. Only ever called with PIDs that the project's own scripts recorded. A PID is
# free for reuse once its process has exited, so the process is signalled only while its
# command line still names the program (the first word of NAME).
stop_pid() {
  local pid=$1 signal=$2 name=$3 cmdline
  kill -0 "$pid" 2>/dev/null || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  case $cmdline in
    *"${name%% *}"*) ;;
    "") return 0 ;; # exited, not yet reaped by its parent
    *)
      echo "stop: pid $pid no longer runs $name (its command is ${cmdline:0:100}); not signalled" >&2
      return 0
      ;;
  esac
  kill -"$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "stop: $name (pid $pid) did not exit within 30 s of SIG$signal; sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
