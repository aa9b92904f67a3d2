#!/usr/bin/env bash
# Stops the Temporal server that temporal-up.sh started in DIR, by the PID it recorded, and
# waits for it to exit. Safe to run twice. Pass --purge to delete DIR, the workflow
# database included, afterwards.
set -euo pipefail

dir=${1:?usage: temporal-down.sh DIR [--purge]}
source "$(dirname "$0")/lib/stop-pid.sh"

# The start script recorded the absolute path, and stop_pid matches it.
[ -d "$dir" ] && dir=$(cd "$dir" && pwd)
if [ -f "$dir/watchdog.pid" ]; then
  stop_pid "$(cat "$dir/watchdog.pid")" TERM watchdog "$dir"
  rm -f "$dir/watchdog.pid"
fi
if [ -f "$dir/pid" ]; then
  stop_pid "$(cat "$dir/pid")" TERM temporal "$dir"
  rm -f "$dir/pid"
fi

if [ "${2:-}" = "--purge" ]; then
  rm -rf "$dir"
fi
