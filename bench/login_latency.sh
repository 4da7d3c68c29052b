#!/usr/bin/env bash
# Login latency at one connection, and login throughput under a flood,
# against the single-thread argon2 time (issue 16).
#
# With FastAPI Users' argon2 cost (m=65536 KiB, t=3, p=4, or the ARGON2_*
# given in the environment) on SQLite, rate limit and lockout off:
#  1. the single-thread hash time: the bare argon2id computation
#     (adapters/password/examples/argon2_time.rs) pinned to one CPU;
#  2. login p50/p95 at one connection: LOGINS good logins one after the
#     other (a user's own hash, no re-hash), after 3 warm-up ones;
#  3. a flood: FLOOD good logins, PARALLEL at a time (keep PARALLEL at most
#     slots + HASH_QUEUE_MAX so nothing is shed), its throughput against
#     what the hashing slots allow: slots / single-thread hash time.
# Targets: login p50 <= 0.6 x the single-thread time (the lanes run in
# parallel on idle cores); flood >= 0.95 x the slots' ceiling.
#
# Measured 2026-12-02 on the idle machine after the issue 16 merges
# (`bench/login_latency.sh 30 60 8`, two runs): single-thread hash 139.3 /
# 147.6 ms; login p50 76.7 / 84.8 ms = 0.550 / 0.574 of it; flood 13.97 /
# 11.84 logins/s = 0.973 / 0.873 of the slots' ceiling (curl shares the
# cores; compare medians of several runs).
#
# curl is the client and shares the cores: run it on an otherwise idle
# machine, several times, and compare medians.
#
# Usage: bench/login_latency.sh [LOGINS=40] [FLOOD=80] [PARALLEL=8]
# PORTCULLIS_BIN=path runs another build (e.g. an older one, for "before");
# PORT=n picks the port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
logins=${1:-40}
flood=${2:-80}
parallel=${3:-8}
m=${ARGON2_MEMORY_KIB:-65536}
t=${ARGON2_ITERATIONS:-3}
p=${ARGON2_PARALLELISM:-4}

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release -p portcullis-password --example argon2_time --quiet
bin=${PORTCULLIS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -p portcullis --quiet
  bin="$target_dir/release/portcullis"
fi
work=$(mktemp -d)
port=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
base="http://127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# 1. The single-thread hash time.
single=$(taskset -c 0 "$target_dir/release/examples/argon2_time" 15 "$m" "$t" "$p")
single_ms=$(sed 's/.*median \([0-9.]*\) ms.*/\1/' <<<"$single")

env DATABASE_URL="sqlite://$work/bench.db" PORT="$port" RUST_LOG=warn \
  RATE_LIMIT_AUTH_PER_MINUTE=0 LOGIN_LOCKOUT_FAILURES=0 HASH_QUEUE_MAX=64 HASH_QUEUE_TIMEOUT_MS=60000 \
  ARGON2_MEMORY_KIB="$m" ARGON2_ITERATIONS="$t" ARGON2_PARALLELISM="$p" \
  JWT_SECRET_KEY=bench-jwt-secret-0123456789abcdef0123 \
  AUTH_RESET_PASSWORD_TOKEN_SECRET=bench-reset-secret-0123456789abcdef01 \
  AUTH_VERIFICATION_TOKEN_SECRET=bench-verify-secret-0123456789abcdef0 \
  "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
curl -sf "$base/health" >/dev/null || { echo "the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
# One hashing slot per core the server may use (it inherits our affinity).
slots=$(nproc)

for i in $(seq 8); do
  curl -sf -o /dev/null -X POST "$base/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"bench password $i\"}"
done

# 2. One connection: one login after the other.
login_once() { # <i> -> "status seconds"
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$base/api/auth/jwt/login" \
    --data "username=bench$1@example.com&password=bench%20password%20$1"
}
for i in 1 2 3; do login_once "$i" >/dev/null; done
: >"$work/single.txt"
for n in $(seq "$logins"); do login_once $(( n % 8 + 1 )) >>"$work/single.txt"; done

# 3. The flood: good logins only, so that every request is one hash.
config="$work/flood.curl"
: >"$config"
for n in $(seq "$flood"); do
  i=$(( n % 8 + 1 ))
  [ "$n" -gt 1 ] && echo next >>"$config"
  printf 'url = "%s/api/auth/jwt/login"\ndata = "username=bench%s@example.com&password=bench%%20password%%20%s"\nwrite-out = "%%{http_code} %%{time_total}\\n"\noutput = "/dev/null"\n' \
    "$base" "$i" "$i" >>"$config"
done
start=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-max "$parallel" -K "$config" >"$work/flood.txt"
end=$(date +%s.%N)

python3 - "$work/single.txt" "$work/flood.txt" "$start" "$end" "$single" "$single_ms" "$slots" "$parallel" <<'PY'
import sys
single_path, flood_path, start, end, single_line, single_ms, slots, parallel = sys.argv[1:]
single_ms, slots = float(single_ms), int(slots)

def read(path):
    rows = [line.split() for line in open(path) if line.strip()]
    codes = {}
    for code, _ in rows:
        codes[code] = codes.get(code, 0) + 1
    return sorted(float(s) * 1000 for _, s in rows), codes

def q(values, p):
    return values[min(len(values) - 1, int(p * len(values)))]

one, one_codes = read(single_path)
flood, flood_codes = read(flood_path)
wall = float(end) - float(start)
rate = len(flood) / wall
ceiling = slots * 1000 / single_ms
p50 = q(one, 0.5)
print(f"single-thread hash time (one CPU): {single_line}")
print(f"login at one connection: {len(one)} logins, p50 {p50:.1f} ms, p95 {q(one, 0.95):.1f} ms, "
      f"status {dict(sorted(one_codes.items()))}")
print(f"  p50 / single-thread hash time: {p50 / single_ms:.3f} (target <= 0.6)")
print(f"login flood: {len(flood)} logins, {parallel} at a time, {wall:.2f} s, {rate:.2f} logins/s, "
      f"p50 {q(flood, 0.5):.0f} ms, p95 {q(flood, 0.95):.0f} ms, status {dict(sorted(flood_codes.items()))}")
print(f"  slots' ceiling: {slots} slots / {single_ms:.1f} ms = {ceiling:.2f} logins/s; "
      f"flood / ceiling: {rate / ceiling:.3f} (target >= 0.95)")
ok = (set(one_codes) == {"200"} and set(flood_codes) == {"200"}
      and p50 <= 0.6 * single_ms and rate >= 0.95 * ceiling)
sys.exit(0 if ok else 1)
PY
