#!/usr/bin/env bash
# Every figure of issue 16 from one release binary, in one run, one
# benchmark after the other (none shares the machine with another):
#   1. throughput: `me` and `by_id` against the server's floor on memory,
#      SQLite and PostgreSQL (bench/throughput.sh);
#   2. login: p50 at one connection against the single-thread hash, and a
#      flood against what the hashing slots allow (bench/login_latency.sh);
#   3. memory: resident memory around hashing, the flood's peak, a minute
#      after the last hash (bench/memory.sh);
#   4. scale: 1 000 against 1 000 000 users on SQLite and PostgreSQL
#      (bench/scale.sh).
# Each prints its own figures and goals; the logs stay in LOGS (default: a
# new folder under /tmp), one file per benchmark.
#
# Usage: bench/issue16.sh
# Environment: PORTCULLIS_BIN (a release binary built with the postgres
# feature; by default this one is built), LOGS, and what each benchmark
# reads (e.g. SCALE_ROUNDS, default here 8; SCALE_SECONDS, default here 4).
# Needs what the four need: wrk, curl, python3, psql, initdb/pg_ctl.
# Takes ~30 minutes on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  cargo build --release -p portcullis --features postgres --quiet
  PORTCULLIS_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/portcullis"
fi
export PORTCULLIS_BIN
logs=${LOGS:-$(mktemp -d /tmp/portcullis-issue16-XXXXXX)}
mkdir -p "$logs"
echo "binary: $PORTCULLIS_BIN ($(sha256sum "$PORTCULLIS_BIN" | cut -c1-12)); logs: $logs"

# A benchmark that misses a goal exits 1: the others still run, and the
# summary at the end says which.
failed=()
run() {
  local name=$1; shift
  echo; echo "=== $name: $* ($(date -u +%H:%M:%S))"
  "$@" 2>&1 | tee "$logs/$name.log" || failed+=("$name")
}
run throughput env DURATION="${DURATION:-8}" WARMUP="${WARMUP:-2}" scripts/with-postgres bench/throughput.sh
run login bench/login_latency.sh 30 48 8 12
run memory bench/memory.sh 120 16 65
run scale env SCALE_ROUNDS="${SCALE_ROUNDS:-8}" SCALE_SECONDS="${SCALE_SECONDS:-4}" bench/scale.sh
echo; echo "=== done ($(date -u +%H:%M:%S)); logs: $logs"
if [ ${#failed[@]} -gt 0 ]; then
  echo "exited non-zero (a goal missed, or an error): ${failed[*]}"
  exit 1
fi
