#!/usr/bin/env bash
# Builds the Temporal CLI from the Go module proxy and prints the path of the binary,
# cached in $SCHEDULERD_CACHE/tools/temporal-<version>/ (see lib/go-tool.sh). Its
# `server start-dev` command is the Temporal server (1.29.1) that tests and the demo run on
# loopback. docs/design/workflows.md gives the reasons. CLI v1.5.1 is the newest release that builds
# from the module proxy alone: later ones carry a replace directive that go install
# rejects. The build took 3 minutes on 2 shared cores and makes a binary of about 250 MB.
#
# stdout contains only the binary's path, so callers can run: temporal=$(scripts/temporal-tools.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tool.sh"

build_go_tool temporal github.com/temporalio/cli/cmd/temporal \
	"${SCHEDULERD_TEMPORAL_CLI_VERSION:-v1.5.1}" "about three minutes on 2 cores"
