#!/usr/bin/env bash
# Timing probe: does a login's duration tell which addresses have accounts?
#
# Registers a user while the server runs with FastAPI Users' argon2
# parameters (ARGON2_MEMORY_KIB=65536, ARGON2_ITERATIONS=3,
# ARGON2_PARALLELISM=4: every user of an adopted FastAPI Users database has
# such a hash), restarts the server with the defaults (or the ARGON2_* given
# in the environment), registers a second user, and then times wrong-password
# logins, interleaved: unknown address / known address (current hash) / the
# user with the other-parameter hash. Prints the median of each and the
# ratio of the slowest to the fastest median (target: within 15%, i.e. at
# most 1.15).
#
# One probe of the other-parameter user runs before the measurement: the
# hasher learns each parameter set's cost when it first meets it (see
# adapters/password/src/cost_book.rs).
#
# Usage: bench/timing_probe.sh [ROUNDS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-30}

cargo build --release -p portcullis --quiet
bin="${CARGO_TARGET_DIR:-target}/release/portcullis"
work=$(mktemp -d)
port=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
base="http://127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Rate limit and lockout off: this measures the hashing path only.
start_server() {
  env DATABASE_URL="sqlite://$work/probe.db" PORT=$port RUST_LOG=warn \
    RATE_LIMIT_AUTH_PER_MINUTE=0 LOGIN_LOCKOUT_FAILURES=0 \
    JWT_SECRET_KEY=probe-jwt-secret-0123456789abcdef0123 \
    AUTH_RESET_PASSWORD_TOKEN_SECRET=probe-reset-secret-0123456789abcdef01 \
    AUTH_VERIFICATION_TOKEN_SECRET=probe-verify-secret-0123456789abcdef0 \
    "$@" "$bin" serve >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && return; sleep 0.1; done
  echo "the server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
register() {
  curl -sf -o /dev/null -X POST "$base/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"probe password 123\"}"
}
login_ms() { # <username> -> milliseconds (the answer must be 400)
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$base/api/auth/jwt/login" \
    --data "username=$1&password=wrong%20password" |
    awk '$1 != 400 { print "unexpected status " $1 > "/dev/stderr"; exit 1 } { printf "%.3f\n", $2 * 1000 }'
}

start_server ARGON2_MEMORY_KIB=65536 ARGON2_ITERATIONS=3 ARGON2_PARALLELISM=4
register adopted@example.com
stop_server
start_server
register known@example.com

# Warm-up: every path once (the other-parameter set is learnt here).
for who in nobody@example.com known@example.com adopted@example.com; do login_ms "$who" >/dev/null; done
: >"$work/times.txt"
for r in $(seq "$rounds"); do
  echo "unknown $(login_ms "nobody$r@example.com")" >>"$work/times.txt"
  echo "wrong $(login_ms known@example.com)" >>"$work/times.txt"
  echo "other $(login_ms adopted@example.com)" >>"$work/times.txt"
done

python3 - "$work/times.txt" "$rounds" "${ARGON2_MEMORY_KIB:-19456}" "${ARGON2_ITERATIONS:-2}" "${ARGON2_PARALLELISM:-1}" <<'PY'
import sys, statistics
path, rounds, m, t, p = sys.argv[1:]
times = {}
for line in open(path):
    kind, ms = line.split()
    times.setdefault(kind, []).append(float(ms))
labels = {
    "unknown": "unknown address",
    "wrong": f"known address, wrong password (m={m},t={t},p={p} hash)",
    "other": "user with an other-parameter hash (m=65536,t=3,p=4), wrong password",
}
medians = {k: statistics.median(v) for k, v in times.items()}
print(f"timing probe: {rounds} wrong-password logins of each kind, interleaved, median login time")
for kind in ("unknown", "wrong", "other"):
    print(f"  {labels[kind]}: {medians[kind]:.1f} ms")
ratio = max(medians.values()) / min(medians.values())
print(f"slowest / fastest median: {ratio:.3f} (target <= 1.15)")
for a, b in (("unknown", "wrong"), ("unknown", "other"), ("wrong", "other")):
    print(f"  {a}/{b}: {medians[a] / medians[b]:.3f}")
sys.exit(0 if ratio <= 1.15 else 1)
PY
