#!/usr/bin/env bash
# Abuse flood: logins from many client addresses (X-Forwarded-For, with
# TRUSTED_PROXIES=127.0.0.1) against the release build on SQLite, far more at
# once than there are hashing slots. With a bounded hashing queue
# (HASH_QUEUE_MAX, default 32) the surplus is refused at once with
# 503 SERVICE_BUSY + Retry-After: 1, admitted logins keep a bounded latency,
# memory stays flat, and a real login right after the flood is fast.
#
# Then a second wave whose clients give up after 0.3 s (curl --max-time):
# their requests must leave the queue unhashed, so the real login that
# follows is not delayed by them.
#
# Prints answers by status, median/p99 latency of the 503s and of the
# admitted requests, peak RSS (VmHWM), and the latency of a real login after
# each wave.
#
# Usage: bench/abuse_flood.sh [REQUESTS=600] [PARALLEL=200] [ABANDONED=150]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-600}
parallel=${2:-200}
abandoned=${3:-150}

cargo build --release -p portcullis --quiet
bin="${CARGO_TARGET_DIR:-target}/release/portcullis"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Lockout off: the flood's wrong passwords would otherwise lock the bench
# accounts (a separate protection, measured elsewhere).
DATABASE_URL="sqlite://$work/bench.db" PORT=$port RUST_LOG=warn \
TRUSTED_PROXIES=127.0.0.1 LOGIN_LOCKOUT_FAILURES=0 \
JWT_SECRET_KEY=bench-jwt-secret-0123456789abcdef0123 \
AUTH_RESET_PASSWORD_TOKEN_SECRET=bench-reset-secret-0123456789abcdef01 \
AUTH_VERIFICATION_TOKEN_SECRET=bench-verify-secret-0123456789abcdef0 \
  "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done

for i in $(seq 8); do
  curl -sf -o /dev/null -X POST "$base/api/auth/register" -H 'content-type: application/json' \
    -H "X-Forwarded-For: 10.99.0.$i" \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"bench password $i\"}"
done
rss_idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)

# One login from its own client address: prints "status seconds".
real_login() {
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$base/api/auth/jwt/login" \
    -H "X-Forwarded-For: 10.98.0.$1" --data 'username=bench1@example.com&password=bench%20password%201'
}

# A curl config of logins, each from its own address (10.a.b.c).
flood_config() { # <file> <count> <first-octet>
  local file=$1 count=$2 octet=$3
  : >"$file"
  for n in $(seq "$count"); do
    i=$(( n % 8 + 1 ))
    case $(( n % 4 )) in
      0|1) pw="bench%20password%20$i"; user="bench$i@example.com" ;;  # good
      2)   pw="wrong%20password";      user="bench$i@example.com" ;;  # wrong password
      3)   pw="whatever";              user="nobody$n@example.com" ;; # unknown user
    esac
    [ "$n" -gt 1 ] && echo next >>"$file"
    printf 'url = "%s/api/auth/jwt/login"\nheader = "X-Forwarded-For: %s.%s.%s.%s"\ndata = "username=%s&password=%s"\nwrite-out = "%%{http_code} %%{time_total}\\n"\noutput = "/dev/null"\n' \
      "$base" "$octet" $(( n / 65536 % 256 )) $(( n / 256 % 256 )) $(( n % 256 )) "$user" "$pw" >>"$file"
  done
}

flood_config "$work/flood.curl" "$requests" 10
start=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$parallel" \
  -K "$work/flood.curl" >"$work/flood.txt" || true
end=$(date +%s.%N)
after_flood=$(real_login 1)

flood_config "$work/abandoned.curl" "$abandoned" 11
sed -i 's/^output = /max-time = 0.3\noutput = /' "$work/abandoned.curl"
curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$abandoned" \
  -K "$work/abandoned.curl" >"$work/abandoned.txt" || true
after_abandoned=$(real_login 2)
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)

python3 - "$work/flood.txt" "$start" "$end" "$requests" "$parallel" "$rss_idle" "$hwm" \
  "$after_flood" "$abandoned" "$after_abandoned" <<'PY'
import sys, statistics
path, start, end, n, par, idle, hwm, after_flood, abandoned, after_abandoned = sys.argv[1:]
rows = [l.split() for l in open(path) if l.strip()]
codes = {}
for code, _ in rows: codes[code] = codes.get(code, 0) + 1
def spread(ms):
    if not ms: return "none"
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return f"n={len(ms)} median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms"
busy = [float(t) * 1000 for c, t in rows if c == "503"]
admitted = [float(t) * 1000 for c, t in rows if c in ("200", "400")]
wall = float(end) - float(start)
print(f"abuse flood: {n} logins from {n} client addresses, {par} at a time, {wall:.2f} s wall")
print(f"answers by status: {dict(sorted(codes.items()))}")
print(f"503 SERVICE_BUSY latency: {spread(busy)}")
print(f"admitted (200/400) latency: {spread(admitted)}")
print(f"server memory: RSS idle {int(idle)//1024} MiB, peak (VmHWM) {int(hwm)//1024} MiB")
code, secs = after_flood.split()
print(f"real login right after the flood: {code} in {float(secs)*1000:.0f} ms")
code, secs = after_abandoned.split()
print(f"real login right after {abandoned} logins abandoned after 0.3 s: {code} in {float(secs)*1000:.0f} ms")
bad = {c: k for c, k in codes.items() if c.startswith("5") and c != "503" or c == "000"}
sys.exit(1 if bad else 0)
PY
