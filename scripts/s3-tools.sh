#!/usr/bin/env bash
# Builds versitygw, the S3-compatible server that tests and the demo run on
# loopback, from the Go module proxy, and prints the path of the binary.
#
# The binary goes to $SCHEDULERD_CACHE/tools/versitygw-<version>/versitygw
# (default cache: $HOME/.cache/schedulerd) and is built once per version:
# when it exists the script runs no go command. go install writes into a
# temporary directory and the binary is renamed into place from there, so an
# interrupted build never leaves a partial binary behind. The build took 78 s on a 2-core
# machine that had to download every dependency.
#
# Progress goes to stderr and stdout contains only the binary's path, so
# callers can run: versitygw=$(scripts/s3-tools.sh)
set -euo pipefail

version=${SCHEDULERD_VERSITYGW_VERSION:-v1.8.0}
package=github.com/versity/versitygw/cmd/versitygw
cache_dir="${SCHEDULERD_CACHE:-$HOME/.cache/schedulerd}/tools"
out_dir="$cache_dir/versitygw-$version"
out="$out_dir/versitygw"

log() { echo "s3-tools: $*" >&2; }

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$out_dir"
# scripts/kube-tools.sh takes the same lock, so only one large build runs at
# a time and concurrent callers build versitygw once.
exec 9>"$cache_dir/.lock"
flock 9
if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building versitygw $version (one to five minutes on 2 cores)"
start=$SECONDS
# GOWORK=off keeps a go.work at the repository root out of the build, and
# the empty GOFLAGS keeps flags meant for schedulerd's own module (such as
# -mod) away from the tool's.
if ! GOWORK=off GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$package@$version"; then
	log "building versitygw failed; the go output above names the cause"
	exit 1
fi
mv -f "$tmp/versitygw" "$out"
log "built versitygw $version in $((SECONDS - start)) s"
echo "$out"
