#!/usr/bin/env bash
# Starts a throwaway Prometheus on 127.0.0.1 that scrapes TARGET (host:port, on loopback)
# every second, with every file under DIR, and prints its URL. The URL also goes to DIR/url
# and the PID to DIR/pid; stop it with scripts/prom-down.sh DIR. The binary comes from
# scripts/prom-tools.sh, which builds it on first use.
#
# Usage: scripts/prom-up.sh DIR TARGET...
set -euo pipefail

dir=${1:?usage: prom-up.sh DIR TARGET...}
shift
[ $# -gt 0 ] || { echo "usage: prom-up.sh DIR TARGET..." >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/free-port.sh"
source "$root/scripts/lib/stop-pid.sh"

for target in "$@"; do
  case $target in
    127.*:* | localhost:* | \[::1\]:*) ;;
    *) echo "prom-up: invalid target $target: want host:port on loopback (127.0.0.0/8, localhost or [::1])" >&2; exit 2 ;;
  esac
done

bin=$("$root/scripts/prom-tools.sh")
targets=$(printf '"%s", ' "$@")
cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: schedulerd
    static_configs:
      - targets: [${targets%, }]
YAML

# Prometheus exits when another process takes the port between free_port and the bind, and
# then the next port is tried.
for _ in 1 2 3 4 5; do
  port=$(free_port)
  "$bin/prometheus" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$dir/prometheus.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 300); do
    if curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      echo "http://127.0.0.1:$port" >"$dir/url"
      cat "$dir/url"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$pid" TERM prometheus "$dir"
  rm -f "$dir/pid"
done

echo "prom-up: Prometheus did not become ready; the end of $dir/prometheus.log follows" >&2
tail -n 20 "$dir/prometheus.log" >&2 || true
exit 1
