#!/usr/bin/env bash
# Stop the cluster that scripts/kube-up.sh started in DIR, and wait until
# every process has exited. State in DIR stays, so kube-up.sh DIR can start
# the cluster again with the same data; delete DIR to discard it.
#
# Usage: scripts/kube-down.sh DIR
#
# Only the PIDs recorded in DIR/*.pid are signalled, and only while that
# process's command line still contains DIR, so a PID that the system has
# reused for another program is left alone. Calling it twice is safe.
set -euo pipefail

# Seconds to wait after SIGTERM before sending SIGKILL.
term_timeout=${SCHEDULERD_KUBE_STOP_TIMEOUT:-20}

log() { echo "kube-down: $*" >&2; }

# running PID succeeds while PID is alive and not a zombie. A zombie has
# exited but waits for its parent to reap it, so it counts as stopped.
running() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n "$state" && "$state" != Z ]]
}

# owned PID succeeds if PID's command line contains the cluster directory.
owned() {
	local cmdline
	cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	# Match DIR followed by "/" or a space, so that DIR=/tmp/a does not match
	# a process of /tmp/ab.
	[[ "$cmdline" == *"$dir/"* || "$cmdline" == *"$dir "* ]]
}

# stop NAME sends SIGTERM to the process in NAME.pid, waits for it to exit,
# sends SIGKILL after term_timeout, and removes the PID file.
stop() {
	local name=$1
	local pid_file="$dir/$name.pid"
	[[ -f "$pid_file" ]] || return 0
	local pid
	pid=$(<"$pid_file")
	if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
		log "ignoring $pid_file: it contains '$pid', not a PID"
		rm -f "$pid_file"
		return 0
	fi
	if ! running "$pid" || ! owned "$pid"; then
		rm -f "$pid_file"
		return 0
	fi

	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + term_timeout))
	while running "$pid"; do
		if ((SECONDS >= deadline)); then
			log "$name (pid $pid) did not exit within $term_timeout s of SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 5))
			while running "$pid" && ((SECONDS < deadline)); do
				sleep 0.1
			done
			break
		fi
		sleep 0.1
	done
	if running "$pid"; then
		log "$name (pid $pid) is still running after SIGKILL"
		return 1
	fi
	rm -f "$pid_file"
	log "stopped $name (pid $pid)"
}

main() {
	if [[ $# -ne 1 ]]; then
		echo "usage: $0 DIR" >&2
		exit 2
	fi
	if [[ ! -d "$1" ]]; then
		log "$1 does not exist; nothing to stop"
		return 0
	fi
	dir=$(cd "$1" && pwd)

	# Stop clients before the servers they use, so that none of them logs
	# errors about a lost apiserver or etcd.
	local status=0 name
	for name in watchdog kwok kube-scheduler kube-apiserver etcd; do
		stop "$name" || status=1
	done
	return "$status"
}

main "$@"
