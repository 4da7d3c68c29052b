#!/usr/bin/env bash
# Login flood: N logins (half good, half wrong password, some unknown users),
# M at a time, against a release build on SQLite. Reports throughput, latency
# spread and the server's peak memory (VmHWM), which must stay bounded
# because at most `cores` argon2 jobs (19 MiB each at the default cost) run
# at once.
#
# Usage: bench/login_flood.sh [REQUESTS=400] [PARALLEL=64]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-400}
parallel=${2:-64}

cargo build --release -p portcullis --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# One client address, far over RATE_LIMIT_AUTH_PER_MINUTE: the limit is off,
# this measures hashing.
DATABASE_URL="sqlite://$work/bench.db" PORT=$port RUST_LOG=warn RATE_LIMIT_AUTH_PER_MINUTE=0 \
JWT_SECRET_KEY=bench-jwt-secret-0123456789abcdef0123 \
AUTH_RESET_PASSWORD_TOKEN_SECRET=bench-reset-secret-0123456789abcdef01 \
AUTH_VERIFICATION_TOKEN_SECRET=bench-verify-secret-0123456789abcdef0 \
  ./target/release/portcullis serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done

for i in $(seq 8); do
  curl -sf -o /dev/null -X POST "$base/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"bench password $i\"}"
done
rss_idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)

config="$work/requests.curl"
for n in $(seq "$requests"); do
  i=$(( n % 8 + 1 ))
  case $(( n % 4 )) in
    0|1) pw="bench password $i"; user="bench$i@example.com" ;;   # good
    2)   pw="wrong password";    user="bench$i@example.com" ;;   # wrong password
    3)   pw="whatever";          user="nobody$n@example.com" ;;  # unknown user
  esac
  [ "$n" -gt 1 ] && echo next >>"$config"
  printf 'url = "%s/api/auth/jwt/login"\ndata = "username=%s&password=%s"\nwrite-out = "%%{http_code} %%{time_total}\\n"\noutput = "/dev/null"\n' \
    "$base" "$user" "${pw// /%20}" >>"$config"
done

start=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-max "$parallel" -K "$config" >"$work/results.txt"
end=$(date +%s.%N)

python3 - "$work/results.txt" "$start" "$end" "$requests" "$parallel" "$rss_idle" "$(awk '/VmHWM/{print $2}' /proc/$pid/status)" <<'PY'
import sys, statistics
path, start, end, n, par, idle, hwm = sys.argv[1:]
rows = [l.split() for l in open(path) if l.strip()]
codes = {}
for code, _ in rows: codes[code] = codes.get(code, 0) + 1
lat = sorted(float(t) * 1000 for _, t in rows)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
wall = float(end) - float(start)
print(f"login flood: {n} requests, {par} at a time, {wall:.2f} s wall, {len(rows)/wall:.0f} req/s")
print(f"status codes: {dict(sorted(codes.items()))}")
print(f"latency ms: p50 {q(0.5):.0f}, p90 {q(0.9):.0f}, p99 {q(0.99):.0f}, max {lat[-1]:.0f}")
print(f"server memory: RSS idle {int(idle)//1024} MiB, peak (VmHWM) {int(hwm)//1024} MiB")
bad = {c: k for c, k in codes.items() if c.startswith("5") or c == "000"}
sys.exit(1 if bad else 0)
PY
