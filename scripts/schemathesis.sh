#!/usr/bin/env bash
# Fuzzes a running Portcullis against its own OpenAPI document with
# Schemathesis: every operation of /openapi.json, positive and negative
# data, the stateful phase following the document's links, and every check
# Schemathesis has (no 5xx, status codes, content types, headers and bodies
# as documented, negative data rejected, positive data accepted, 405 and
# Allow for other methods, use after free, ignored auth, ...).
#
# It builds and starts the debug binary on a free port (in-memory store,
# fixed secrets, a first superuser, cheap argon2, no per-address limit: the
# fuzzer sends thousands of POSTs under /auth/ from one address, and every
# one answered 429 would test nothing), installs Schemathesis in a
# venv under the cache directory, logs in as the superuser so protected
# operations are exercised too (scripts/schemathesis_hooks.py keeps that
# superuser active while the fuzzer patches it), runs, prints how many
# requests each route got, and stops the server on exit. Exit status:
# Schemathesis'.
#
# Environment (all optional):
#   PORTCULLIS_BIN          use this binary instead of building target/debug/portcullis
#   SCHEMATHESIS_MAX_TIME   time budget of the run in seconds (default 120)
#   SCHEMATHESIS_MAX_EXAMPLES  examples per operation and phase (default 50)
#   SCHEMATHESIS_SEED       random seed (default fixed, for reproducible CI runs)
#   SCHEMATHESIS_WORKERS    concurrent workers (default 2)
#   PORTCULLIS_CACHE_DIR    where the venv lives (default ~/.cache/portcullis)
#   SCHEMATHESIS_REPORT_DIR keep the NDJSON events and the server log there
#   SCHEMATHESIS_USER_FIELDS   USER_FIELDS of the server (default: one field of each type)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
max_time=${SCHEMATHESIS_MAX_TIME:-120}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-50}
seed=${SCHEMATHESIS_SEED:-20261128}
workers=${SCHEMATHESIS_WORKERS:-2}
cache=${PORTCULLIS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/portcullis}
venv=$cache/schemathesis-$SCHEMATHESIS_VERSION

# One extra user field of each type and writer, so that the fuzzer also
# checks them against the document (SCHEMATHESIS_USER_FIELDS= for none).
user_fields='{"nickname": {"type": "string", "max_length": 20, "nullable": true, "writable_by": "user"},
 "credits": {"type": "integer", "default": 0, "writable_by": "admin"},
 "newsletter": {"type": "boolean", "default": false, "writable_by": "user"}}'
superuser_email=root@example.com
superuser_password=fuzz-root-password-123

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-schemathesis.XXXXXX")
report=${SCHEMATHESIS_REPORT_DIR:-$work}
mkdir -p "$report"
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The server.
if [ -n "${PORTCULLIS_BIN:-}" ]; then
    bin=$PORTCULLIS_BIN
else
    echo "== building the portcullis binary (debug)"
    cargo build --quiet --bin portcullis
    bin=target/debug/portcullis
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
echo "== starting $bin on $base"
env HOST=127.0.0.1 PORT="$port" API_PREFIX=/api \
    DATABASE_URL=memory:// \
    JWT_SECRET_KEY=schemathesis-jwt-secret-0123456789abcdef0123456789 \
    AUTH_RESET_PASSWORD_TOKEN_SECRET=schemathesis-reset-secret-0123456789abcdef012345 \
    AUTH_VERIFICATION_TOKEN_SECRET=schemathesis-verify-secret-0123456789abcdef01234 \
    FIRST_SUPERUSER_EMAIL=$superuser_email FIRST_SUPERUSER_PASSWORD=$superuser_password \
    ARGON2_MEMORY_KIB=8192 ARGON2_ITERATIONS=1 ARGON2_PARALLELISM=1 \
    USER_FIELDS="${SCHEMATHESIS_USER_FIELDS-$user_fields}" \
    RATE_LIMIT_AUTH_PER_MINUTE=0 \
    RUST_LOG=${RUST_LOG:-warn} \
    "$bin" >"$report/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -sf "$base/health" >/dev/null 2>&1 && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server stopped:" >&2
        cat "$report/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
curl -sf "$base/health" >/dev/null

# 2. Schemathesis, in its own venv.
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION in $venv"
    mkdir -p "$cache"
    rm -rf "$venv"
    python3 -m venv "$venv" || {
        echo "python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# 3. A bearer token of the superuser, for the protected operations, and a
# second superuser that keeps the first one usable (scripts/schemathesis_hooks.py).
api=$base/api
json_field() { "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
login() {
    curl -sf -X POST "$api/auth/jwt/login" --data-urlencode "username=$1" --data-urlencode "password=$2" |
        json_field access_token
}
token=$(login "$superuser_email" "$superuser_password")
fuzzed_id=$(curl -sf "$api/users/me" -H "Authorization: Bearer $token" | json_field id)
keeper_email=keeper@example.com
keeper_password=fuzz-keeper-password-123
keeper_id=$(curl -sf -X POST "$api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\": \"$keeper_email\", \"password\": \"$keeper_password\"}" | json_field id)
curl -sf -X PATCH "$api/users/$keeper_id" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d '{"is_superuser": true}' >/dev/null
export SCHEMATHESIS_HOOKS=$root/scripts/schemathesis_hooks.py
export PORTCULLIS_FUZZ_BASE_URL=$base PORTCULLIS_FUZZ_API_PREFIX=/api
export PORTCULLIS_FUZZ_USER_ID=$fuzzed_id
PORTCULLIS_FUZZ_KEEPER_TOKEN=$(login "$keeper_email" "$keeper_password")
export PORTCULLIS_FUZZ_KEEPER_TOKEN
# DELETE /users/me/sessions runs as a user of its own (scripts/schemathesis.toml).
sessions_email=sessions@example.com
sessions_password=fuzz-sessions-password-123
curl -sf -X POST "$api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\": \"$sessions_email\", \"password\": \"$sessions_password\"}" >/dev/null
PORTCULLIS_FUZZ_SESSIONS_TOKEN=$(login "$sessions_email" "$sessions_password")
export PORTCULLIS_FUZZ_SESSIONS_TOKEN

# 4. The run. `--checks all` with nothing excluded: every check applies to
# an auth API. scripts/schemathesis.toml, saying why, counts FastAPI Users'
# documented 400s as answers positive data may get, and keeps the stateful
# phase on the document's own links. object_level_authorization needs
# several identities (a WFC auth file) and does nothing with the one bearer
# header given here.
echo "== schemathesis $SCHEMATHESIS_VERSION: max ${max_time}s, ${max_examples} examples per operation, seed $seed"
status=0
(
    cd "$work"
    "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" --no-color \
        run "$base/openapi.json" \
        --checks all \
        --header "Authorization: Bearer $token" \
        --max-examples "$max_examples" \
        --max-time "$max_time" \
        --seed "$seed" \
        --workers "$workers" \
        --request-timeout 10 \
        --generation-database none \
        --report ndjson --report-ndjson-path "$report/events.ndjson"
) || status=$?

# 5. How many requests each route got.
echo "== generated requests per route"
"$venv/bin/python" - "$report/events.ndjson" "$base/openapi.json" <<'PY'
import collections
import json
import sys
import urllib.request

events, schema_url = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(schema_url) as answer:
    paths = json.load(answer)["paths"]
documented = {(m.upper(), p) for p, item in paths.items() for m in item}
counts = collections.Counter()
statuses = collections.defaultdict(collections.Counter)
try:
    lines = open(events, encoding="utf-8")
except FileNotFoundError:
    sys.exit("no events recorded")
for line in lines:
    event = json.loads(line)
    recorder = event.get("ScenarioFinished", {}).get("recorder")
    if not recorder:
        continue
    cases = recorder.get("cases", {})
    for case_id, interaction in recorder.get("interactions", {}).items():
        method = interaction["request"]["method"].upper()
        path = cases.get(case_id, {}).get("value", {}).get("path", "?")
        key = (method, path) if (method, path) in documented else ("(other)", "undocumented methods (405 probes)")
        counts[key] += 1
        response = interaction.get("response") or {}
        statuses[key][response.get("status_code", "no answer")] += 1
width = max(len(f"{m} {p}") for m, p in counts) if counts else 0
for (method, path), n in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    by_status = ", ".join(f"{s}: {c}" for s, c in sorted(statuses[(method, path)].items(), key=str))
    print(f"  {method + ' ' + path:<{width}}  {n:>6}   ({by_status})")
missing = sorted(documented - set(counts))
for method, path in missing:
    print(f"  {method + ' ' + path:<{width}}  {0:>6}   NOT EXERCISED")
print(f"  {'total':<{width}}  {sum(counts.values()):>6}")
PY

[ "$report" != "$work" ] || echo "(the events and the server log are removed; set SCHEMATHESIS_REPORT_DIR to keep them)"
if [ "$status" -ne 0 ]; then
    echo "== schemathesis failed (exit $status); server log tail:" >&2
    tail -n 40 "$report/server.log" >&2
fi
exit "$status"
