#!/usr/bin/env bash
# Builds promtool and prometheus, which the metrics and dashboard tests run on loopback,
# from the Go module proxy, and prints the directory that contains both.
#
# The binaries go to $SCHEDULERD_CACHE/tools/prometheus-<version>/ (default cache:
# $HOME/.cache/schedulerd) and are built once per version: when both exist the script
# runs no go command. Each go install writes into a temporary directory and the binary is
# renamed into place, so an interrupted build never leaves a partial binary behind. With an
# empty module cache the two builds took 29 minutes on 2 cores that other builds shared
# (9.5 minutes of CPU time), most of it downloading modules.
#
# The prometheus binary is built without the builtinassets tag, so it serves the HTTP API
# but no web UI; the tests use only the API.
#
# Progress goes to stderr and stdout contains only the directory, so callers can run:
# bin=$(scripts/prom-tools.sh)
set -euo pipefail

version=${SCHEDULERD_PROMETHEUS_VERSION:-v0.316.0}
module=github.com/prometheus/prometheus
cache_dir="${SCHEDULERD_CACHE:-$HOME/.cache/schedulerd}/tools"
out_dir="$cache_dir/prometheus-$version"

log() { echo "prom-tools: $*" >&2; }

all_built() {
	[[ -x "$out_dir/promtool" && -x "$out_dir/prometheus" ]]
}

if all_built; then
	echo "$out_dir"
	exit 0
fi

mkdir -p "$out_dir"
# scripts/s3-tools.sh takes the same lock, so only one large build runs at a time and
# concurrent callers build each binary once.
exec 9>"$cache_dir/.lock"
flock 9

tmp=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for name in promtool prometheus; do
	if [[ -x "$out_dir/$name" ]]; then
		continue
	fi
	log "building $name $version (minutes; the first build downloads many modules)"
	start=$SECONDS
	# GOWORK=off keeps a go.work at the repository root out of the build, and the empty
	# GOFLAGS drops a -mod setting that go install with a version rejects. CGO_ENABLED=0
	# gives static binaries.
	if ! GOWORK=off GOFLAGS= CGO_ENABLED=0 GOBIN="$tmp" \
		go install -trimpath -ldflags "-s -w" "$module/cmd/$name@$version"; then
		log "building $name failed; the go output above names the cause"
		exit 1
	fi
	mv -f "$tmp/$name" "$out_dir/$name"
	log "built $name $version in $((SECONDS - start)) s"
done
echo "$out_dir"
