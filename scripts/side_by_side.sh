#!/usr/bin/env bash
# FastAPI Users (the reference service, ../shared/reference) and Portcullis
# side by side on ONE database, with the same secrets: the rolling switch of
# README "Moving from FastAPI Users", exercised in both directions (users,
# access tokens, reset and verification links, a bcrypt user's rehash,
# password changes, and what FastAPI Users does not see: a revocation).
# Three rounds: SQLite created by FastAPI Users, PostgreSQL (asyncpg)
# created by FastAPI Users, SQLite created by Portcullis (going back). One
# PASS/FAIL line per step (KNOWN: a documented difference, checked to hold);
# exits non-zero if any step failed. Not run in CI: it needs Python and pip.
#
#   scripts/side_by_side.sh                 # builds target/release/portcullis
#   PORTCULLIS_BIN=target/debug/portcullis scripts/side_by_side.sh
#
# Needs: Python 3 with venv and pip (the reference's venv,
# /tmp/portcullis-reference-venv or $REFERENCE_VENV, is created as its run.sh
# does; bcrypt is added to it for the bcrypt user), PostgreSQL's
# initdb/pg_ctl (scripts/with-postgres makes a throwaway cluster) unless
# SIDE_BY_SIDE_PG_URL names a server (postgres://USER@HOST:PORT/DB, a
# database that may be dropped and created), and free ports
# SIDE_BY_SIDE_PORTS (default 8201,8202,8203: FastAPI Users, Portcullis,
# the mail sink). Logs: $TMPDIR/side-by-side-<round>-*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
reference=${REFERENCE_DIR:-$root/../shared/reference}
venv=${REFERENCE_VENV:-/tmp/portcullis-reference-venv}
ports=${SIDE_BY_SIDE_PORTS:-8201,8202,8203}

if [ -z "${SIDE_BY_SIDE_PG_URL:-}" ] && [ -z "${PORTCULLIS_TEST_POSTGRES_URL:-}" ]; then
    exec scripts/with-postgres "$0" "$@"
fi
pg_url=${SIDE_BY_SIDE_PG_URL:-$PORTCULLIS_TEST_POSTGRES_URL}

if [ ! -x "$venv/bin/uvicorn" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$reference/requirements.txt"
fi
if ! "$venv/bin/python" -c 'import bcrypt' 2>/dev/null; then
    "$venv/bin/pip" install -q bcrypt
fi

bin=${PORTCULLIS_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release -p portcullis --features postgres
    bin=${CARGO_TARGET_DIR:-$root/target}/release/portcullis
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/side-by-side.XXXXXX")

# The server URL (postgres://USER@HOST:PORT/DB[?QUERY]) with another
# database name, the query kept.
database_url() {
    local base=${pg_url%%\?*} query=
    [ "$base" = "$pg_url" ] || query="?${pg_url#*\?}"
    echo "${base%/*}/$1$query"
}
pg_db=side_by_side_$$
# `database CREATE` makes the PostgreSQL round's database, `database DROP`
# drops it.
database() {
    "$venv/bin/python" - "$(database_url postgres)" "$pg_db" "$1" <<'EOF'
import asyncio, sys
import asyncpg
async def main(url, name, what):
    conn = await asyncpg.connect(url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if what == "CREATE":
        await conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    await conn.close()
asyncio.run(main(*sys.argv[1:]))
EOF
}
trap 'rm -rf "$work"; database DROP || true' EXIT
database CREATE
pg=$(database_url "$pg_db")

status=0
round() {
    local label=$1 fastapi_url=$2 portcullis_url=$3 first=$4
    "$venv/bin/python" "$root/scripts/side_by_side.py" --portcullis "$bin" \
        --reference "$reference" --label "$label" --fastapi-url "$fastapi_url" \
        --portcullis-url "$portcullis_url" --first "$first" --ports "$ports" \
        --logs "${TMPDIR:-/tmp}" || status=1
}
round sqlite "sqlite+aiosqlite:///$work/shared.db" "sqlite://$work/shared.db" fastapi
round postgres "postgresql+asyncpg://${pg#*://}" "$pg" fastapi
round sqlite-portcullis-first "sqlite+aiosqlite:///$work/back.db" "sqlite://$work/back.db" portcullis
echo "== side by side: $([ $status -eq 0 ] && echo 'every round passed' || echo 'FAILED (see the FAIL lines above)')"
exit $status
