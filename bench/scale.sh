#!/usr/bin/env bash
# Issue 16, scale: `me`, `by_id` and login throughput, start-up, `migrate`,
# register and the database size with 1 000 and with 1 000 000 users, on
# SQLite and on PostgreSQL (a throwaway cluster, scripts/with-postgres).
# The users are bulk-loaded outside Portcullis (sqlite3 / COPY), as rows
# exactly as Portcullis writes them, sharing the first superuser's hash;
# bench/scale.py says how each figure is taken. The goal: the 1M figures
# within 10% of the 1k ones (ratios >= 0.90), start-up under 1 s, register
# one hash time plus milliseconds (compare "register ms" with "login@1 ms",
# one hash and the store's look-ups).
#
# Usage: bench/scale.sh [SIZES="1000 1000000"] [STORES="sqlite postgres"]
# Environment: SCALE_ROUNDS (3), SCALE_SECONDS (8, per wrk round),
# SCALE_PORT_BASE (9400: the servers take ports from here on),
# PORTCULLIS_BIN (a release binary built with the postgres feature; by
# default this one is built).
# Needs wrk, python3, psql and PostgreSQL's initdb/pg_ctl (for postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
export SCALE_SIZES=${1:-"1000 1000000"}
export SCALE_STORES=${2:-"sqlite postgres"}

if [ -z "${PORTCULLIS_BIN:-}" ]; then
  cargo build --release -p portcullis --features postgres --quiet
  export PORTCULLIS_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/portcullis"
fi
case " $SCALE_STORES " in
  *" postgres "*) exec scripts/with-postgres python3 bench/scale.py ;;
  *) exec python3 bench/scale.py ;;
esac
