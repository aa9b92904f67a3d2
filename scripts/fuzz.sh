#!/usr/bin/env bash
# Runs each fuzz target for a short while against one throwaway PostgreSQL that all fuzz
# workers share, then stops it by its PID. CI runs this after the tests so the fuzzers keep
# finding nothing new; run longer by hand with FUZZTIME=10m, which applies to every target.
#
# The defaults are counts of executions, 10 to 15 s each on 2 idle cores. A count has no
# deadline. A duration can fail with a bare "context deadline exceeded" and no failing
# input, because of a race in Go's fuzzing coordinator at the deadline (golang/go#75804,
# fixed in Go 1.27). It failed a CI run here with Go 1.26.8.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/schedulerd-fuzz-XXXXXX)
chmod 711 "$dir"
trap '"$root/scripts/pg-down.sh" "$dir/pg" --purge >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

export SCHEDULERD_TEST_DATABASE_URL
SCHEDULERD_TEST_DATABASE_URL=$("$root/scripts/pg-up.sh" "$dir/pg")

cd "$root"
go test -run '^$' -fuzz '^FuzzSubmit$' -fuzztime "${FUZZTIME:-20000x}" ./api/
go test -run '^$' -fuzz '^FuzzReadTasks$' -fuzztime "${FUZZTIME:-1000000x}" ./replay/trace/
go test -run '^$' -fuzz '^FuzzReadNodes$' -fuzztime "${FUZZTIME:-1000000x}" ./replay/trace/
