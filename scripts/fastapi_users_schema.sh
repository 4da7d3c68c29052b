#!/usr/bin/env bash
# Captures from the real FastAPI Users (../shared/reference, refapp.py,
# FastAPI Users 15) the schema it creates and the SQL it sends for its
# account routes, on SQLite and on PostgreSQL (asyncpg), into
# tests/fixtures/fastapi_users_sql/ (scripts/fastapi_users_sql.py says what
# the files hold). The files are committed: the tests that replay them
# (tests/tests/fastapi_users_sql.rs) need no Python.
#
# Needs Python 3 and pip (the reference's venv is created when missing, as
# its run.sh does) and PostgreSQL's initdb/pg_ctl for a throwaway cluster
# (scripts/with-postgres), unless FASTAPI_USERS_PG_URL names an empty
# database to use (postgres://USER@HOST:PORT/DB; its tables are created)
# and FASTAPI_USERS_PG_OAUTH_URL another one for the OAuth table (else a
# database `fastapi_users_oauth` is created next to the first).
#
#   scripts/fastapi_users_schema.sh
#   FASTAPI_USERS_PG_URL=postgres://postgres@127.0.0.1:8250/fixtures scripts/fastapi_users_schema.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
reference=${REFERENCE_DIR:-$root/../shared/reference}
venv=${REFERENCE_VENV:-/tmp/portcullis-reference-venv}
out=$root/tests/fixtures/fastapi_users_sql

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$reference/requirements.txt"
fi

if [ -z "${FASTAPI_USERS_PG_URL:-}" ] && [ -z "${PORTCULLIS_TEST_POSTGRES_URL:-}" ]; then
    exec scripts/with-postgres "$0" "$@"
fi
pg_url=${FASTAPI_USERS_PG_URL:-$PORTCULLIS_TEST_POSTGRES_URL}

work=$(mktemp -d "${TMPDIR:-/tmp}/fastapi-users-sql.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

capture() {
    (cd "$reference" && PYTHONPATH="$reference" "$venv/bin/python" \
        "$root/scripts/fastapi_users_sql.py" "$1" "$2" "$out" "${3:-routes}")
}

capture "sqlite+aiosqlite:///$work/fastapi_users.db" sqlite
echo "== sqlite: $out/sqlite_schema.sql, $out/sqlite_steps.json"
# The OAuth account table (SQLAlchemyBaseOAuthAccountTableUUID) and its
# statements, on a database of their own.
capture "sqlite+aiosqlite:///$work/fastapi_users_oauth.db" sqlite oauth
echo "== sqlite: $out/sqlite_oauth_schema.sql, $out/sqlite_oauth_steps.json"
capture "postgresql+asyncpg://${pg_url#*://}" postgres
echo "== postgres: $out/postgres_schema.sql, $out/postgres_steps.json"
pg_oauth_url=${FASTAPI_USERS_PG_OAUTH_URL:-}
if [ -z "$pg_oauth_url" ]; then
    # A second database on the same server for the OAuth capture.
    psql -q "$pg_url" -c 'CREATE DATABASE fastapi_users_oauth'
    pg_oauth_url=${pg_url%/*}/fastapi_users_oauth
fi
capture "postgresql+asyncpg://${pg_oauth_url#*://}" postgres oauth
echo "== postgres: $out/postgres_oauth_schema.sql, $out/postgres_oauth_steps.json"
