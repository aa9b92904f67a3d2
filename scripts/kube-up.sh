#!/usr/bin/env bash
# Start a local Kubernetes control plane for schedulerd's tests and demos:
# etcd, kube-apiserver, kube-scheduler and KWOK, which simulates nodes
# annotated kwok.x-k8s.io/node=fake and the pods bound to them (see
# scripts/kwok-stages.yaml).
#
# Usage: scripts/kube-up.sh [--watch-pid PID] DIR
#
# Every component listens on 127.0.0.1 only, on free ports chosen at start.
# DIR contains all state: pki/ (certificates and keys), etcd/ (data),
# log/<component>.log, <component>.pid, and kubeconfig with admin
# (system:masters) credentials. The script prints the kubeconfig path when
# the apiserver reports /readyz ok and the scheduler and KWOK are healthy.
# Reusing a stopped DIR restarts the cluster with its old data.
#
# With --watch-pid PID, a background watchdog runs scripts/kube-down.sh DIR
# once process PID exits, so a test binary that is killed does not leave the
# cluster running.
#
# Stop with: scripts/kube-down.sh DIR
#
# Environment:
#   SCHEDULERD_KUBE_BIN            directory with the four binaries; by
#                                  default scripts/kube-tools.sh builds them
#   SCHEDULERD_KUBE_START_TIMEOUT  seconds to wait for each component (60)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start_timeout=${SCHEDULERD_KUBE_START_TIMEOUT:-60}

log() { echo "kube-up: $*" >&2; }

usage() {
	echo "usage: $0 [--watch-pid PID] DIR" >&2
	exit 2
}

# fail prints why a start failed, the end of that component's log, stops
# every component already started, and exits.
fail() {
	local name=$1 message=$2
	log "$name $message"
	if [[ -s "$dir/log/$name.log" ]]; then
		log "last 40 lines of $dir/log/$name.log:"
		tail -n 40 "$dir/log/$name.log" >&2
	else
		log "$dir/log/$name.log is empty"
	fi
	"$script_dir/kube-down.sh" "$dir" >&2 || true
	exit 1
}

# free_port prints a TCP port that nothing on this host listens on and that
# is not in used_ports. It picks
# from 20000-32767, below Linux's default ephemeral range (32768-60999), so
# that outgoing connections do not take it before the component binds it.
# NOTE: another program can still bind the port between this check and the
# component's start. The component then fails and kube-up reports its log.
free_port() {
	local port tries
	for ((tries = 0; tries < 100; tries++)); do
		port=$((20000 + RANDOM % 12768))
		if [[ " ${used_ports[*]} " == *" $port "* ]]; then
			continue
		fi
		if [[ -z "$(ss -Htln "sport = :$port")" ]]; then
			echo "$port"
			return
		fi
	done
	log "no free TCP port found in 20000-32767 after 100 tries"
	exit 1
}

# check_not_running exits with an error if a process recorded in DIR/*.pid
# still runs, and removes PID files of processes that have exited.
check_not_running() {
	local pid_file pid cmdline
	for pid_file in "$dir"/*.pid; do
		[[ -e "$pid_file" ]] || continue
		pid=$(<"$pid_file")
		# Match DIR the way kube-down.sh does, so that a reused PID of an
		# unrelated process is not taken for a cluster process.
		cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || cmdline=""
		if [[ "$cmdline" == *"$dir/"* || "$cmdline" == *"$dir "* ]]; then
			log "$(basename "$pid_file" .pid) still runs in $dir (pid $pid); run scripts/kube-down.sh $dir first"
			exit 1
		fi
		rm -f "$pid_file"
	done
}

# make_cert NAME SUBJECT [SUBJECT_ALT_NAMES] creates pki/NAME.key and
# pki/NAME.crt signed by the cluster CA, valid for 10 years. ECDSA P-256
# keys take milliseconds to generate, which keeps the first start fast.
make_cert() {
	local name=$1 subject=$2 sans=${3:-}
	local key="$dir/pki/$name.key" crt="$dir/pki/$name.crt"
	[[ -f "$crt" && -f "$key" ]] && return
	openssl ecparam -name prime256v1 -genkey -noout -out "$key" 2>/dev/null
	local ext="$dir/pki/$name.ext"
	{
		echo "basicConstraints = CA:FALSE"
		echo "keyUsage = critical, digitalSignature, keyEncipherment"
		if [[ -n "$sans" ]]; then
			echo "extendedKeyUsage = serverAuth"
			echo "subjectAltName = $sans"
		else
			echo "extendedKeyUsage = clientAuth"
		fi
	} >"$ext"
	openssl req -new -key "$key" -subj "$subject" 2>/dev/null |
		openssl x509 -req -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" \
			-CAcreateserial -days 3650 -extfile "$ext" -out "$crt" 2>/dev/null
	rm -f "$ext"
}

make_pki() {
	mkdir -p "$dir/pki"
	chmod 700 "$dir/pki"
	if [[ ! -f "$dir/pki/ca.crt" ]]; then
		openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/ca.key" 2>/dev/null
		openssl req -x509 -new -key "$dir/pki/ca.key" -subj "/CN=schedulerd-test-ca" \
			-days 3650 -out "$dir/pki/ca.crt" 2>/dev/null
	fi
	# The scheduler reuses the apiserver's serving certificate, since both
	# serve on 127.0.0.1.
	make_cert serving "/CN=kube-apiserver" \
		"IP:127.0.0.1, IP:::1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:$service_ip"
	make_cert admin "/O=system:masters/CN=schedulerd-admin"
	# The RBAC bootstrap policy grants the scheduler's permissions to the
	# user system:kube-scheduler.
	make_cert scheduler "/CN=system:kube-scheduler"
	if [[ ! -f "$dir/pki/service-account.key" ]]; then
		openssl ecparam -name prime256v1 -genkey -noout \
			-out "$dir/pki/service-account.key" 2>/dev/null
		openssl ec -in "$dir/pki/service-account.key" -pubout \
			-out "$dir/pki/service-account.pub" 2>/dev/null
	fi
}

# write_kubeconfig FILE CERT_NAME writes a kubeconfig that embeds the CA and
# the client certificate pki/CERT_NAME.crt, so it works from any directory.
write_kubeconfig() {
	local file=$1 name=$2
	local tmp="$file.tmp"
	cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: schedulerd-test
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(base64 -w0 "$dir/pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$dir/pki/$name.crt")
    client-key-data: $(base64 -w0 "$dir/pki/$name.key")
contexts:
- name: schedulerd-test
  context:
    cluster: schedulerd-test
    user: $name
current-context: schedulerd-test
EOF
	chmod 600 "$tmp"
	mv -f "$tmp" "$file"
}

# start NAME COMMAND... runs COMMAND in the background with its output in
# log/NAME.log and its PID in NAME.pid.
start() {
	local name=$1
	shift
	"$@" </dev/null >>"$dir/log/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}

# wait_ready NAME CURL_ARGS... polls a health URL until it returns ok, and
# fails if the process exits or start_timeout passes first.
wait_ready() {
	local name=$1
	shift
	local pid deadline=$((SECONDS + start_timeout))
	pid=$(<"$dir/$name.pid")
	while true; do
		if ! kill -0 "$pid" 2>/dev/null; then
			fail "$name" "exited during start"
		fi
		local response
		response=$(curl -fsS --max-time 2 "$@" 2>/dev/null) || response=""
		# etcd returns JSON and the other components return "ok".
		if [[ "$response" == ok || "$response" == *'"health":"true"'* ]]; then
			return
		fi
		if ((SECONDS >= deadline)); then
			fail "$name" "did not become ready within $start_timeout s (set SCHEDULERD_KUBE_START_TIMEOUT to wait longer)"
		fi
		sleep 0.2
	done
}

start_etcd() {
	local client_url="http://127.0.0.1:$etcd_port"
	local peer_url="http://127.0.0.1:$etcd_peer_port"
	# --unsafe-no-fsync trades crash safety, which a throwaway test cluster
	# does not need, for much faster writes on shared disks.
	start etcd "$bin/etcd" \
		--name=schedulerd-test \
		--data-dir="$dir/etcd" \
		--listen-client-urls="$client_url" \
		--advertise-client-urls="$client_url" \
		--listen-peer-urls="$peer_url" \
		--initial-advertise-peer-urls="$peer_url" \
		--initial-cluster="schedulerd-test=$peer_url" \
		--unsafe-no-fsync \
		--log-level=warn
	wait_ready etcd "$client_url/health"
}

start_apiserver() {
	# No controller manager runs, so admission plugins that wait for its
	# objects are disabled: ServiceAccount needs the default service account
	# of each namespace, and TaintNodesByCondition taints new nodes NotReady
	# until the node lifecycle controller clears it. The endpoint reconciler
	# is off because 127.0.0.1 is not a valid endpoint for the kubernetes
	# service.
	start kube-apiserver "$bin/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address=127.0.0.1 \
		--advertise-address=127.0.0.1 \
		--secure-port="$apiserver_port" \
		--tls-cert-file="$dir/pki/serving.crt" \
		--tls-private-key-file="$dir/pki/serving.key" \
		--client-ca-file="$dir/pki/ca.crt" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$dir/pki/service-account.pub" \
		--service-account-signing-key-file="$dir/pki/service-account.key" \
		--service-cluster-ip-range="$service_cidr" \
		--endpoint-reconciler-type=none \
		--authorization-mode=RBAC \
		--disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
		--profiling=false
	wait_ready kube-apiserver --cacert "$dir/pki/ca.crt" \
		--cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
		"https://127.0.0.1:$apiserver_port/readyz"
}

start_scheduler() {
	write_kubeconfig "$dir/scheduler.kubeconfig" scheduler
	# The default client rate (50 requests/s) binds only about 50 pods/s, so
	# raise it for tests that submit many pods at once.
	cat >"$dir/scheduler-config.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $dir/scheduler.kubeconfig
  qps: 1000
  burst: 2000
leaderElection:
  leaderElect: false
EOF
	start kube-scheduler "$bin/kube-scheduler" \
		--config="$dir/scheduler-config.yaml" \
		--bind-address=127.0.0.1 \
		--secure-port="$scheduler_port" \
		--tls-cert-file="$dir/pki/serving.crt" \
		--tls-private-key-file="$dir/pki/serving.key"
	wait_ready kube-scheduler --cacert "$dir/pki/ca.crt" \
		"https://127.0.0.1:$scheduler_port/healthz"
}

start_kwok() {
	# KWOK_WORKDIR keeps kwok from also loading ~/.kwok/kwok.yaml. KWOK
	# serves /healthz only after its controllers have started.
	mkdir -p "$dir/kwok"
	start kwok env KWOK_WORKDIR="$dir/kwok" "$bin/kwok" \
		--kubeconfig="$dir/kubeconfig" \
		--config="$script_dir/kwok-stages.yaml" \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--server-address="127.0.0.1:$kwok_port"
	wait_ready kwok "http://127.0.0.1:$kwok_port/healthz"
}

# start_watchdog PID runs kube-down once PID exits. It removes its own PID
# file first, so that kube-down does not signal the watchdog that runs it.
# It runs as a separate bash with DIR in its arguments, because kube-down
# signals only processes whose command line contains DIR.
start_watchdog() {
	# shellcheck disable=SC2016 # expanded by the watchdog's bash
	start watchdog bash -c '
		while kill -0 "$1" 2>/dev/null; do sleep 1; done
		echo "process $1 exited; stopping the cluster in $2"
		rm -f "$2/watchdog.pid"
		exec "$3/kube-down.sh" "$2"
	' watchdog "$1" "$dir" "$script_dir"
}

# elapsed START prints the seconds since START, an $EPOCHREALTIME value.
elapsed() {
	awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}

main() {
	local watch_pid=""
	while [[ $# -gt 0 ]]; do
		case $1 in
		--watch-pid)
			[[ $# -ge 2 ]] || usage
			watch_pid=$2
			shift 2
			;;
		-*) usage ;;
		*) break ;;
		esac
	done
	[[ $# -eq 1 ]] || usage
	if [[ -n "$watch_pid" ]] && ! kill -0 "$watch_pid" 2>/dev/null; then
		log "--watch-pid $watch_pid: no such process"
		exit 2
	fi

	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	mkdir -p "$dir/log"
	check_not_running

	bin=${SCHEDULERD_KUBE_BIN:-$("$script_dir/kube-tools.sh")}
	local tool
	for tool in etcd kube-apiserver kube-scheduler kwok; do
		if [[ ! -x "$bin/$tool" ]]; then
			log "$bin/$tool is missing; unset SCHEDULERD_KUBE_BIN or run scripts/kube-tools.sh"
			exit 1
		fi
	done

	# The service range is only allocated from, never routed, because no
	# kube-proxy runs.
	service_cidr=10.96.0.0/16
	service_ip=10.96.0.1
	used_ports=()
	etcd_port=$(free_port)
	used_ports+=("$etcd_port")
	etcd_peer_port=$(free_port)
	used_ports+=("$etcd_peer_port")
	apiserver_port=$(free_port)
	used_ports+=("$apiserver_port")
	scheduler_port=$(free_port)
	used_ports+=("$scheduler_port")
	kwok_port=$(free_port)

	local started=$EPOCHREALTIME
	make_pki
	if [[ -n "$watch_pid" ]]; then
		start_watchdog "$watch_pid"
	fi
	start_etcd
	start_apiserver
	write_kubeconfig "$dir/kubeconfig" admin
	start_scheduler
	start_kwok
	log "ready in $(elapsed "$started") s: apiserver https://127.0.0.1:$apiserver_port, logs in $dir/log"
	echo "$dir/kubeconfig"
}

main "$@"
