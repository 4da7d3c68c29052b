#!/usr/bin/env bash
# Proves Swagger UI works end to end in a real browser: starts Portcullis
# (debug build, in-memory store, a first superuser), opens /docs in headless
# Chromium, logs in with the Authorize button (OAuth2 password flow), runs
# GET /users/me with "Try it out" → Execute and checks the 200 shows the
# superuser's e-mail; then logs in with the cookie transport from the page
# (POST /auth/cookie/login) and checks GET /users/me with the cookie alone.
# COOKIE_SECURE=false: the page is plain http://127.0.0.1, where a browser
# need not keep a Secure cookie. Screenshot: $SWAGGER_UI_SCREENSHOT
# (default /tmp/swagger-ui-check.png).
#
# Installs what it needs when missing: Debian's chromium and chromium-driver
# (apt-get, as root), and selenium from PyPI in a venv under the cache
# directory. Chromium runs with every flag that keeps it off the internet.
#
# Environment (optional): PORTCULLIS_BIN (use this binary instead of
# building), PORTCULLIS_CACHE_DIR (default ~/.cache/portcullis).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SELENIUM_VERSION=4.50.0
screenshot=${SWAGGER_UI_SCREENSHOT:-/tmp/swagger-ui-check.png}
cache=${PORTCULLIS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/portcullis}
venv=$cache/selenium-$SELENIUM_VERSION
superuser_email=root@example.com
superuser_password=swagger-root-password-123

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-swagger-ui.XXXXXX")
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

# What the check needs.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "== installing chromium and chromium-driver (apt-get)"
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    echo "== installing selenium $SELENIUM_VERSION in $venv"
    mkdir -p "$cache"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "selenium==$SELENIUM_VERSION"
fi

# The server.
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
env HOST=127.0.0.1 PORT="$port" API_PREFIX=/api DATABASE_URL=memory:// \
    JWT_SECRET_KEY=swagger-ui-jwt-secret-0123456789abcdef0123456789ab \
    AUTH_RESET_PASSWORD_TOKEN_SECRET=swagger-ui-reset-secret-0123456789abcdef01234567 \
    AUTH_VERIFICATION_TOKEN_SECRET=swagger-ui-verify-secret-0123456789abcdef0123456 \
    FIRST_SUPERUSER_EMAIL=$superuser_email FIRST_SUPERUSER_PASSWORD=$superuser_password \
    ARGON2_MEMORY_KIB=8192 ARGON2_ITERATIONS=1 RUST_LOG=warn \
    COOKIE_SECURE=false \
    "$bin" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -sf "$base/health" >/dev/null 2>&1 && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.2
done

echo "== Swagger UI in headless chromium"
status=0
"$venv/bin/python" "$root/scripts/swagger_ui_check.py" \
    "$base" "$superuser_email" "$superuser_password" "$screenshot" || status=$?
if [ "$status" -eq 0 ]; then
    echo "== Swagger UI check passed"
else
    echo "== Swagger UI check FAILED; server log tail:" >&2
    tail -n 30 "$work/server.log" >&2
fi
exit "$status"
