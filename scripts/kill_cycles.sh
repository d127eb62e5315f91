#!/usr/bin/env bash
# kill -9 cycles under concurrent ingest and delivery, on SQLite (one process) and on a
# PostgreSQL ledger shared by three processes (tests/it/kill_cycles.rs), then the figures:
# acknowledged events, lost, without delivery, delivered, in doubt (and how many of those did
# reach the platform), double counts.
#
#   scripts/kill_cycles.sh [CYCLES]     default 20 (the suite runs 3)
#
# PostgreSQL must answer at SURETY_TEST_PG (default postgres://root@127.0.0.1:5432/test; .ci/run
# starts it).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-20}"
log="target/kill_cycles.log"
mkdir -p target
rc=0
SURETY_KILL_CYCLES="$cycles" cargo test --test it kill_cycles -- --nocapture --test-threads=1 >"$log" 2>&1 || rc=$?
grep -E "^kill cycles|test result|panicked|FAILED|^test " "$log" || true
[ "$rc" -eq 0 ] || { echo "kill_cycles: failed (full log: $log)" >&2; exit 1; }
