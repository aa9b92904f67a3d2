#!/usr/bin/env bash
# The main job: starts PostgreSQL, the local Kubernetes stack and schedulerd on loopback,
# replays the GPU-cluster trace through them, prints where the report is and stops
# everything it started, by PID, also when a step fails or it is interrupted by SIGINT,
# SIGTERM or SIGHUP (not when it is killed with SIGKILL). A replay stopped under way writes
# a partial report first, and a second signal stops the replay without it. Arguments are
# passed to `schedulerd replay`, e.g. scripts/demo.sh -limit 500 or -mode fill.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
trace_dir=${TRACE_DIR:-$root/../shared/traces/alibaba-gpu-v2023}
report_dir=${REPORT_DIR:-$root/out/replay-$(date -u +%Y%m%d-%H%M%S)}
source "$root/scripts/lib/stop-pid.sh"
source "$root/scripts/lib/free-port.sh"

[ -f "$trace_dir/openb_pod_list_default.csv" ] || {
  echo "demo: no trace in $trace_dir; set TRACE_DIR to the folder of the openb CSV files" >&2
  exit 1
}
# Build the binary if it is missing or older than the sources (fast when nothing changed).
(cd "$root" && "${GO:-go}" build -o bin/schedulerd ./cmd/schedulerd)

work=$(mktemp -d /tmp/schedulerd-demo-XXXXXX)
# PostgreSQL runs as the postgres user, which must be able to enter this folder.
chmod 711 "$work"

daemon_pid=""
replay_pid=""
# Touched when the replay starts, so that a report older than this run is not announced.
replay_mark="$work/replay-started"
# abort_replay passes a signal that comes during cleanup, such as a second Ctrl-C while
# the replay writes its partial report, on to the replay as SIGTERM. The replay takes it as
# its second signal: it stops writing the report and exits at once. The cleanup goes on.
abort_replay() {
  if [ -n "$replay_pid" ] && pid_running "$replay_pid" && pid_owned "$replay_pid" "$root"; then
    echo "demo: stopping the replay without waiting for its partial report"
    kill -TERM "$replay_pid" 2>/dev/null || true
  fi
}
cleanup() {
  local status=$?
  trap abort_replay INT TERM HUP
  echo "demo: stopping everything it started"
  [ -n "$replay_pid" ] && stop_pid "$replay_pid" TERM "schedulerd replay" "$root" || true
  # A replay that a signal or its -timeout stopped, or that failed once it had started
  # submitting, writes a partial report before it exits.
  if [ $status -ne 0 ] && [ -f "$replay_mark" ] && [ "$report_dir/report.md" -nt "$replay_mark" ]; then
    echo "demo: the replay stopped early; its partial report is $report_dir/report.md"
  fi
  [ -n "$daemon_pid" ] && stop_pid "$daemon_pid" TERM schedulerd "$root" || true
  "$root/scripts/kube-down.sh" "$work/kube" >/dev/null 2>&1 || true
  "$root/scripts/pg-down.sh" "$work/pg" >/dev/null 2>&1 || true
  if [ $status -ne 0 ]; then
    echo "demo: failed; what was started left its logs in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, with the status a shell gives a process
# the signal ended, so that the logs are kept. The replay runs in the background with a
# wait, because bash runs a trap only after the foreground command has returned.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "demo: starting PostgreSQL"
export SCHEDULERD_DATABASE_URL
SCHEDULERD_DATABASE_URL=$("$root/scripts/pg-up.sh" "$work/pg")

echo "demo: starting etcd, kube-apiserver, kube-scheduler and KWOK"
export SCHEDULERD_KUBECONFIG
SCHEDULERD_KUBECONFIG=$("$root/scripts/kube-up.sh" "$work/kube" | tail -n 1)

"$root/bin/schedulerd" migrate up

export SCHEDULERD_HTTP_ADDR="127.0.0.1:$(free_port)"
"$root/bin/schedulerd" run >"$work/schedulerd.log" 2>&1 &
daemon_pid=$!
ready=""
for _ in $(seq 300); do
  curl -fs "http://$SCHEDULERD_HTTP_ADDR/readyz" >/dev/null 2>&1 && { ready=yes; break; }
  kill -0 "$daemon_pid" 2>/dev/null || { tail -n 20 "$work/schedulerd.log" >&2; exit 1; }
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "demo: schedulerd did not become ready within 60 s; the end of its log:" >&2
  tail -n 20 "$work/schedulerd.log" >&2
  curl -s "http://$SCHEDULERD_HTTP_ADDR/readyz" >&2 || true
  exit 1
fi
echo "demo: schedulerd is running (pid $daemon_pid, admin API on $SCHEDULERD_HTTP_ADDR)"

start=$(date +%s)
touch "$replay_mark"
# setsid puts the replay in a session of its own, so that a Ctrl-C in the terminal reaches
# it only through this script, as one SIGTERM from cleanup. Were the replay to get the
# terminal's SIGINT as well, that SIGTERM would be its second signal, which stops the
# partial report. A background job of a script leads no process group, so setsid does not
# fork: it becomes the replay, and $! is the replay's PID.
setsid "$root/bin/schedulerd" replay -trace-dir "$trace_dir" -daemon-pid "$daemon_pid" \
  -report-dir "$report_dir" "$@" &
replay_pid=$!
replay_status=0
wait "$replay_pid" || replay_status=$?
# The replay has been reaped: its PID may be reused from here on, so cleanup must not
# signal it.
replay_pid=""
[ "$replay_status" -eq 0 ] || exit "$replay_status"
echo "demo: the replay took $(( $(date +%s) - start )) s; open $report_dir/report.md"
