#!/usr/bin/env bash
# Builds the Temporal CLI from the Go module proxy and prints the path of the
# binary. Its `server start-dev` command is the Temporal server (1.29.1) that
# tests and the demo run on loopback; see docs/design/workflows.md for why.
#
# The binary goes to $SCHEDULERD_CACHE/tools/temporal-<version>/temporal
# (default cache: $HOME/.cache/schedulerd) and is built once per version: when
# it exists the script runs no go command. CLI v1.5.1 is the newest release
# that builds from the module proxy alone; later ones carry a replace
# directive that go install refuses. The build takes about eight minutes on
# two busy cores and makes a binary of about 250 MB.
#
# Progress goes to stderr and stdout contains only the binary's path, so
# callers can run: temporal=$(scripts/temporal-tools.sh)
set -euo pipefail

version=${SCHEDULERD_TEMPORAL_CLI_VERSION:-v1.5.1}
package=github.com/temporalio/cli/cmd/temporal
cache_dir="${SCHEDULERD_CACHE:-$HOME/.cache/schedulerd}/tools"
out_dir="$cache_dir/temporal-$version"
out="$out_dir/temporal"

log() { echo "temporal-tools: $*" >&2; }

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$out_dir"
# The other tool scripts take the same lock, so only one large build runs at
# a time and concurrent callers build the CLI once.
exec 9>"$cache_dir/.lock"
flock 9
if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building the Temporal CLI $version (about eight minutes on 2 cores)"
start=$SECONDS
# GOWORK=off and the empty GOFLAGS keep schedulerd's own module settings away
# from the tool's build.
if ! GOWORK=off GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$package@$version"; then
	log "building the Temporal CLI failed; the go output above names the cause"
	exit 1
fi
mv -f "$tmp/temporal" "$out"
log "built the Temporal CLI $version in $((SECONDS - start)) s"
echo "$out"
