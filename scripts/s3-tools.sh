#!/usr/bin/env bash
# Builds versitygw, the S3-compatible server that tests and the demo run on loopback, from
# the Go module proxy, and prints the path of the binary, cached in
# $SCHEDULERD_CACHE/tools/versitygw-<version>/ (see lib/go-tool.sh). The build took 78 s on
# a 2-core machine that had to download every dependency.
#
# stdout contains only the binary's path, so callers can run: versitygw=$(scripts/s3-tools.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tool.sh"

build_go_tool versitygw github.com/versity/versitygw/cmd/versitygw \
	"${SCHEDULERD_VERSITYGW_VERSION:-v1.8.0}" "one to five minutes on 2 cores"
