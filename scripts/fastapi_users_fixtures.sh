#!/usr/bin/env bash
# Regenerates tests/fixtures/fastapi_users/ (fastapi_users.db, fixtures.json)
# with the real FastAPI Users 15 service of ../shared/reference: a SQLite
# database it created, users it registered or whose hashes pwdlib and passlib
# wrote, and the access, reset and verify tokens it minted (with lifetimes of
# 50 years). See tests/fixtures/fastapi_users/README.md.
#
# Usage: scripts/fastapi_users_fixtures.sh [PORT]   (default 8150)
# Env: REFERENCE_DIR (default ../shared/reference beside the repository),
#      REFERENCE_VENV (default /tmp/portcullis-reference-venv; made with the
#      reference's requirements.txt plus passlib when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8150}
reference=${REFERENCE_DIR:-$(cd .. && pwd)/shared/reference}
venv=${REFERENCE_VENV:-/tmp/portcullis-reference-venv}
if [ ! -f "$reference/refapp.py" ]; then
    echo "no FastAPI Users reference at $reference (set REFERENCE_DIR)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$reference/requirements.txt"
fi
if ! "$venv/bin/python" -c 'import passlib' 2>/dev/null; then
    "$venv/bin/pip" install -q passlib
fi
REFERENCE_DIR=$reference exec "$venv/bin/python" scripts/fastapi_users_fixtures.py \
    generate tests/fixtures/fastapi_users "$port"
