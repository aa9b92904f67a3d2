#!/usr/bin/env bash
# Runs schedulerd's benchmarks next to their references (pgbench -N, River, a raw client-go
# loop). It starts a PostgreSQL 15 server and a local Kubernetes control plane for the run on
# 127.0.0.1 and stops them by PID at the end, also when interrupted. It prints one table and
# writes bench/results/RESULTS-<date>.md.
#
# Usage: scripts/bench.sh [schedulerd-bench flags...]
#
# Environment:
#   BENCH_SIZE=full   (default) the sizes of the record: 1M and 10M jobs rows, 10,000 pods
#   BENCH_SIZE=small  sizes for development on a busy machine, a few minutes in all
#   BENCH_MAX_LOAD    the 1-minute load average above which the script warns that the numbers
#                     will not mean much (4)
#   SCHEDULERD_PG_BINDIR  PostgreSQL 15's bin directory, as for pg-up.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size=${BENCH_SIZE:-full}
max_load=${BENCH_MAX_LOAD:-4}

case $size in
full) size_flags=() ;;
small)
  size_flags=(-dequeue-jobs 5000 -growth-sizes 10000,50000,100000 -growth-queued 2000
    -pgbench-scale 1 -pgbench-time 5s -nodes 16 -dispatch-pods 300 -memory-pods 1000
    -latency-idle-jobs 50 -latency-loaded-time 5s)
  ;;
*)
  echo "bench: BENCH_SIZE must be full or small, not $size" >&2
  exit 2
  ;;
esac

load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" -v m="$max_load" 'BEGIN { exit !(l > m) }'; then
  echo "bench: load average is $load1 (above $max_load): other work shares the machine and the numbers will say little" >&2
fi

work=$(mktemp -d -t schedulerd-bench-XXXXXX)
# pg-up.sh gives its directory to the postgres user when run as root, and that user cannot
# enter $work (mode 0700), so the server gets a directory of its own.
pg_dir=$(mktemp -d -t schedulerd-bench-pg-XXXXXX)
kube_dir=$work/kube
cleanup() {
  local status=$?
  "$repo/scripts/kube-down.sh" "$kube_dir" >/dev/null 2>&1 || echo "bench: stopping the cluster in $kube_dir failed" >&2
  "$repo/scripts/pg-down.sh" "$pg_dir" --purge || echo "bench: stopping PostgreSQL in $pg_dir failed" >&2
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building schedulerd and schedulerd-bench" >&2
(cd "$repo" && go build -o "$work/schedulerd" ./cmd/schedulerd && go build -o "$work/schedulerd-bench" ./bench/cmd/schedulerd-bench)

echo "bench: starting PostgreSQL and the Kubernetes control plane" >&2
db_url=$(SCHEDULERD_PG_SHARED_BUFFERS=${SCHEDULERD_PG_SHARED_BUFFERS:-1GB} "$repo/scripts/pg-up.sh" "$pg_dir")
# Bulk loads of millions of rows: fewer checkpoints and more memory for index builds and
# vacuum. The server is throwaway, which is why pg-up.sh already turns fsync off.
pg_bin=${SCHEDULERD_PG_BINDIR:-/usr/lib/postgresql/15/bin}
psql=$pg_bin/psql
"$psql" -X -q -d "$db_url" \
  -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
  -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
  -c "ALTER SYSTEM SET maintenance_work_mem = '512MB'" \
  -c "ALTER SYSTEM SET work_mem = '64MB'" \
  -c "SELECT pg_reload_conf()" >/dev/null
kubeconfig=$("$repo/scripts/kube-up.sh" --watch-pid $$ "$kube_dir")

cd "$repo"
"$work/schedulerd-bench" -database-url "$db_url" -kubeconfig "$kubeconfig" \
  -daemon-binary "$work/schedulerd" -pg-bin "$pg_bin" -out "$repo/bench/results" "${size_flags[@]}" "$@"
