#!/usr/bin/env bash
# Login latency at one connection, and login throughput under a flood,
# against the single-thread argon2 time (issue 16).
#
# With FastAPI Users' argon2 cost (m=65536 KiB, t=3, p=4, or the ARGON2_*
# given in the environment) on SQLite, rate limit and lockout off:
#  1. login p50/p95 at one connection: LOGINS good logins one after the
#     other (a user's own hash, no re-hash), after 3 warm-up ones, against
#     the single-thread hash time: the bare argon2id computation
#     (adapters/password/examples/argon2_time.rs) pinned to CPU 0, measured
#     right before and right after, averaged;
#  2. a flood, in ROUNDS rounds of FLOOD good logins, PARALLEL at a time
#     (keep PARALLEL at most slots + HASH_QUEUE_MAX so nothing is shed):
#     its steady throughput against what the hashing slots allow, one bare
#     computation pinned to each CPU, all at once, measured between the
#     rounds (bench/login_flood.py; the median of the rounds' ratios).
# Targets: login p50 <= 0.6 x the single-thread time (the lanes run in
# parallel on idle cores); flood >= 0.95 x what the slots allow.
#
# This machine's speed drifts by tens of percent within seconds (a shared
# host: the same bare hash took 142 to 215 ms, and two at once 9.4 to 13.8
# per second, within minutes), hence the references taken right around
# what they are compared to. The slots' reference is the bare hashes *at
# once*: two of them on two CPUs each took ~1.2x one alone here (shared
# memory bus and caches), so "slots x the single-thread rate" is a ceiling
# no server reaches; it is printed for comparison with older figures.
#
# Measured 2026-12-02 (idle machine, `bench/login_latency.sh 30 60 8`,
# before this method, two runs): login p50 0.550 / 0.574 of the
# single-thread time; flood 0.973 / 0.873 of slots x the single-thread rate.
# With this method (`bench/login_latency.sh 30 48 8 4`, twice, and `... 8`
# once): p50 0.555, 0.559, 0.669 of the single-thread time; flood, median
# of the rounds, 0.980 (rounds 0.99 1.06 0.88 0.97), 0.900 (0.92 0.94 0.88
# 0.80), 0.937 (8 rounds, 0.82 to 1.06) of what the slots allow.
# Then the reference became a rate, as the flood's is: each CPU's hashes
# over their time, the processes hashing side by side for 1.2 s (before:
# 1 / the median of 7 hash times, with the slower process's last hashes
# alone on the memory bus). `bench/login_latency.sh 30 48 8 12`, idle
# machine: p50 0.632 of the single-thread time (other runs the same day:
# 0.463, 0.477, 0.598); flood median 0.948 (12 rounds, 0.83 to 1.10; 0.964
# against the median hash times). The server's CPU per login was 0.94 of a
# bare hash's (median of the rounds), the client's own 0.6 ms per login.
# A second run: p50 0.506; flood median 0.961 (12 rounds, 0.81 to 1.03;
# 0.972 against the median hash times), server CPU per login 0.957 of a
# bare hash's. The 24 rounds of both runs: median 0.955, mean 0.958.
# Then hashes run on the hashing threads themselves (no blocking-pool
# thread waiting for each) and the login's address is read on the request
# thread. Same command, idle machine, two runs: p50 0.532 of the
# single-thread time (81.3 ms against 152.9 ms) in the second; flood
# median 0.949 (12 rounds, 0.86 to 1.06; 0.957 against the median hash
# times) and 0.960 (0.87 to 1.06; 0.958); server CPU per login 0.971 and
# 0.997 of a bare hash's.
#
# 2026-12-03: a job started while another runs computes its lanes on a solo
# thread (lanes.rs); login_flood.py now also prints the server's CPU use
# over each round's steady part, per CPU. Same command, idle machine, the
# binaries before (936da25 + the PostgreSQL token lane) and after, in
# turns: p50 0.532-0.550 before, 0.522 / 0.608 / 0.559 after (the host);
# flood median 0.925, 0.975, 0.970 before, 1.000, 0.958, 0.995 after;
# server CPU use under the flood 0.966 of the 2 CPUs before (rounds 0.954
# to 0.976), 0.989 after (0.987 to 0.993): the ~2.5 % the lanes of two
# jobs left idle waiting for each other is gone (a crude wrk flood:
# system idle 2.3-3.0 % before, 0.0 % after; with p = 1 it was 0.0 % even
# before).
#
# 2026-12-04: the same binary (4ba2427) gave p50 0.520 of the single-thread
# time at 12:25 (`bench/issue16.sh`), then 0.633, 0.602 and 0.629 after
# 15:45 (a single-thread hash of ~100 ms instead of ~124, the login p50
# still 60-69 ms). The bare computation with its lanes on both CPUs, timed
# by hand over the same minutes (`argon2_time 15`, unpinned, after the
# pinned one, three pairs): 0.65, 0.49 and 0.50 of the pinned time. So the
# script now also times that bare lane-parallel hash right around the
# logins and prints the p50 against it (no target: it is the host's own
# floor, the lanes sharing one memory bus). Two runs right after
# (`bench/login_latency.sh 30 48 8 1`): p50 0.580 and 0.497 of the
# single-thread time; the bare lane-parallel hash 0.548 and 0.552 of it;
# p50 / the bare lane-parallel hash 1.058 and 0.900: a login at one
# connection costs what its hash costs the host, and the 0.6 is met or
# missed with the host's memory bus.
#
# Usage: bench/login_latency.sh [LOGINS=40] [FLOOD=48] [PARALLEL=8] [ROUNDS=4]
#   (FLOOD: logins per flood round)
# PORTCULLIS_BIN=path runs another build (e.g. an older one, for "before");
# PORT=n picks the port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
logins=${1:-40}
flood=${2:-48}
parallel=${3:-8}
rounds=${4:-4}
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

argon2_time=$target_dir/release/examples/argon2_time
median_ms() { sed 's/.*median \([0-9.]*\) ms.*/\1/'; }
# The single-thread hash time: the bare computation pinned to CPU 0.
single_time() { taskset -c 0 "$argon2_time" 11 "$m" "$t" "$p" | median_ms; }
# For comparison only (no target): the bare computation with its lanes on
# every CPU the server may use (rayon's pool, one thread per CPU, as the
# server's shared lane pool has one per slot): the host's own floor for a
# login at one connection, which the memory bus the lanes share sets.
lanes_time() { "$argon2_time" 11 "$m" "$t" "$p" | median_ms; }

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
# This machine's speed drifts (a shared host): each reference is measured
# right before and right after what is compared to it, and averaged.
single_before=$(single_time)
lanes_before=$(lanes_time)
: >"$work/single.txt"
for n in $(seq "$logins"); do login_once $(( n % 8 + 1 )) >>"$work/single.txt"; done
lanes_after=$(lanes_time)
single_after=$(single_time)

latency=0
python3 - "$work/single.txt" "$single_before" "$single_after" "$m" "$t" "$p" "$lanes_before" "$lanes_after" <<'PY' || latency=$?
import sys
single_path, single_before, single_after, m, t, p, lanes_before, lanes_after = sys.argv[1:]
single_ms = (float(single_before) + float(single_after)) / 2
lanes_ms = (float(lanes_before) + float(lanes_after)) / 2
rows = [line.split() for line in open(single_path) if line.strip()]
codes = {}
for code, _ in rows:
    codes[code] = codes.get(code, 0) + 1
one = sorted(float(s) * 1000 for _, s in rows)
q = lambda p: one[min(len(one) - 1, int(p * len(one)))]
p50 = q(0.5)
print(f"single-thread hash time (argon2id m={m} t={t} p={p}, CPU 0): {single_ms:.1f} ms "
      f"(median before {single_before} ms, after {single_after} ms)")
print(f"login at one connection: {len(one)} logins, p50 {p50:.1f} ms, p95 {q(0.95):.1f} ms, "
      f"status {dict(sorted(codes.items()))}")
print(f"  p50 / single-thread hash time: {p50 / single_ms:.3f} (target <= 0.6)")
print(f"  for comparison, the bare hash with its lanes on every CPU: {lanes_ms:.1f} ms "
      f"(median before {lanes_before} ms, after {lanes_after} ms), "
      f"{lanes_ms / single_ms:.3f} of the single-thread time; p50 / it: {p50 / lanes_ms:.3f}")
sys.exit(0 if set(codes) == {"200"} and p50 <= 0.6 * single_ms else 1)
PY

# 3. The flood, good logins only (every request is one hash), in rounds
# interleaved with the reference (bench/login_flood.py).
flood_ok=0
SERVER_PID=$pid python3 bench/login_flood.py "$base" 8 "$parallel" "$flood" "$rounds" "$argon2_time" "$m" "$t" "$p" || flood_ok=$?
[ "$latency" = 0 ] && [ "$flood_ok" = 0 ]
