#!/usr/bin/env bash
# Runs each fuzz target for a short time (FUZZTIME, default 15s) against one throwaway
# PostgreSQL that all fuzz workers share, then stops it by its PID. CI runs this after the
# tests so the fuzzers keep finding nothing new; run longer by hand with FUZZTIME=10m.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzztime=${FUZZTIME:-15s}
dir=$(mktemp -d /tmp/schedulerd-fuzz-XXXXXX)
chmod 711 "$dir"
trap '"$root/scripts/pg-down.sh" "$dir/pg" --purge >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

export SCHEDULERD_TEST_DATABASE_URL
SCHEDULERD_TEST_DATABASE_URL=$("$root/scripts/pg-up.sh" "$dir/pg")

cd "$root"
go test -run '^$' -fuzz '^FuzzSubmit$' -fuzztime "$fuzztime" ./api/
go test -run '^$' -fuzz '^FuzzReadTasks$' -fuzztime "$fuzztime" ./replay/trace/
go test -run '^$' -fuzz '^FuzzReadNodes$' -fuzztime "$fuzztime" ./replay/trace/
