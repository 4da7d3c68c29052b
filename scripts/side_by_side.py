"""FastAPI Users and Portcullis side by side on ONE database: a rolling
switch exercised in both directions. Run by scripts/side_by_side.sh (which
says how); this file is one round on one database:

    python side_by_side.py --portcullis BINARY --reference DIR --label NAME \
        --fastapi-url sqlite+aiosqlite:///FILE --portcullis-url sqlite://FILE \
        [--first fastapi|portcullis] [--ports 8201,8202,8203]

Starts a mail sink (SMTP, plain), then the service named by --first on the
empty database, then the other one on the same database with the same
three secrets, and checks, printing one PASS/FAIL line per step:

- a user registered on each logs in on the other;
- an access token of each reads /users/me on the other;
- a reset link mailed by each resets the password on the other;
- a verification link mailed by each verifies on the other;
- a bcrypt user (hash written by passlib, as FastAPI Users < 13 did) logs
  in on Portcullis, is rehashed, then logs in on FastAPI Users;
- a password changed on each works on the other (and the old one on
  neither);
- what FastAPI Users does not see: after DELETE /users/me/sessions on
  Portcullis, a JWT refused by Portcullis still works on FastAPI Users
  (printed as KNOWN: the documented difference, checked to hold).

Exits 1 when a step failed. Needs the reference's venv (fastapi-users,
aiosqlite, asyncpg) plus bcrypt for the bcrypt user.
"""

import argparse
import asyncio
import email
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SECRETS = {
    "JWT_SECRET_KEY": "side-by-side-jwt-secret-0123456789abcdef",
    "AUTH_RESET_PASSWORD_TOKEN_SECRET": "side-by-side-reset-secret-0123456789ab",
    "AUTH_VERIFICATION_TOKEN_SECRET": "side-by-side-verify-secret-0123456789a",
    "JWT_ACCESS_TOKEN_EXPIRE_MINUTES": "60",
}

failures = []
results = []


def report(ok, step, detail=""):
    word = "PASS" if ok is True else ("KNOWN" if ok == "known" else "FAIL")
    line = f"[{LABEL}] {word:5} {step}" + (f" — {detail}" if detail else "")
    print(line, flush=True)
    results.append(line)
    if word == "FAIL":
        failures.append(line)


# --- mail sink ---------------------------------------------------------------

MAILS = []
MAILS_LOCK = threading.Lock()


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib and lettre (no TLS, no auth)."""

    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        self.reply("220 sink ready")
        rcpt = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "MAIL":
                rcpt = []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while True:
                    part = self.rfile.readline()
                    if not part or part in (b".\r\n", b".\n"):
                        break
                    if part.startswith(b".."):
                        part = part[1:]
                    data.append(part)
                message = email.message_from_bytes(b"".join(data))
                text = []
                for piece in message.walk():
                    if piece.get_content_maintype() == "text":
                        payload = piece.get_payload(decode=True) or b""
                        text.append(payload.decode(errors="replace"))
                with MAILS_LOCK:
                    for to in rcpt:
                        MAILS.append({"to": to.lower(), "body": "\n".join(text)})
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


class ThreadingSmtp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def wait_for_token(address, seen_before, timeout=15):
    """The token of the first mail to `address` after the first `seen_before` mails."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with MAILS_LOCK:
            for mail in MAILS[seen_before:]:
                if mail["to"] == address.lower():
                    found = re.search(r"token=([A-Za-z0-9_\-\.]+)", mail["body"])
                    if found:
                        return found.group(1)
        time.sleep(0.05)
    return None


def mail_count():
    with MAILS_LOCK:
        return len(MAILS)


# --- HTTP --------------------------------------------------------------------


def call(base, method, path, *, json_body=None, form=None, token=None):
    data = None
    headers = {}
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["content-type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    return status, body


def login(base, address, password):
    status, body = call(base, "POST", "/api/auth/jwt/login",
                        form={"username": address, "password": password})
    return status, (body.get("access_token") if status == 200 and isinstance(body, dict) else None)


def wait_healthy(base, process, name, log, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}; its log:\n{tail(log)}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer /health in {timeout} s; its log:\n{tail(log)}")


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


# --- the database, as the services share it -----------------------------------


def db_hash(address):
    """The stored hash of `address`, read straight from the shared database."""
    return asyncio.run(_db_query(
        'SELECT hashed_password FROM "user" WHERE lower(email) = lower(:e)', {"e": address}))


def db_set_hash(address, hashed):
    asyncio.run(_db_query(
        'UPDATE "user" SET hashed_password = :h WHERE lower(email) = lower(:e)',
        {"h": hashed, "e": address}, write=True))


async def _db_query(sql, params, write=False):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    engine = create_async_engine(ARGS.fastapi_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return None if write else result.scalar_one_or_none()
    finally:
        await engine.dispose()


# --- the round ---------------------------------------------------------------


def main():
    global ARGS, LABEL
    parser = argparse.ArgumentParser()
    parser.add_argument("--portcullis", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--fastapi-url", required=True)
    parser.add_argument("--portcullis-url", required=True)
    parser.add_argument("--first", choices=["fastapi", "portcullis"], default="fastapi")
    parser.add_argument("--ports", default="8201,8202,8203")
    parser.add_argument("--logs", default="/tmp")
    ARGS = parser.parse_args()
    LABEL = ARGS.label
    fastapi_port, portcullis_port, smtp_port = (int(p) for p in ARGS.ports.split(","))

    sink = ThreadingSmtp(("127.0.0.1", smtp_port), SmtpHandler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    A = f"http://127.0.0.1:{fastapi_port}"
    P = f"http://127.0.0.1:{portcullis_port}"
    fastapi_log = os.path.join(ARGS.logs, f"side-by-side-{LABEL}-fastapi-users.log")
    portcullis_log = os.path.join(ARGS.logs, f"side-by-side-{LABEL}-portcullis.log")
    common = dict(os.environ, **SECRETS, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port))
    processes = []

    def start_fastapi():
        env = dict(common, DATABASE_URL=ARGS.fastapi_url)
        with open(fastapi_log, "w") as log:
            p = subprocess.Popen([os.path.join(ARGS.reference, "run.sh"), str(fastapi_port)],
                                 env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        processes.append(p)
        wait_healthy(A, p, "FastAPI Users", fastapi_log)

    def start_portcullis():
        env = dict(common, DATABASE_URL=ARGS.portcullis_url, HOST="127.0.0.1",
                   PORT=str(portcullis_port), SMTP_TLS="none", MAIL_FROM="noreply@example.com",
                   RATE_LIMIT_AUTH_PER_MINUTE="0", MAIL_PER_ADDRESS_PER_HOUR="0",
                   FRONTEND_URL="http://localhost", RUST_LOG="info")
        env.pop("PORTCULLIS_ENV", None)
        with open(portcullis_log, "w") as log:
            p = subprocess.Popen([ARGS.portcullis, "serve"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(p)
        wait_healthy(P, p, "Portcullis", portcullis_log)

    try:
        if ARGS.first == "fastapi":
            start_fastapi()
            start_portcullis()
        else:
            start_portcullis()
            start_fastapi()
        print(f"[{LABEL}] FastAPI Users at {A} (log {fastapi_log}), Portcullis at {P} "
              f"(log {portcullis_log}), one database; {ARGS.first} created it", flush=True)
        run_steps(A, P)
    finally:
        for p in processes:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        sink.shutdown()
        sink.server_close()
    print(f"[{LABEL}] {len(results) - len(failures)} of {len(results)} steps as expected, "
          f"{len(failures)} failed", flush=True)
    sys.exit(1 if failures else 0)


def run_steps(A, P):
    sides = {"FastAPI Users": A, "Portcullis": P}
    other = {"FastAPI Users": "Portcullis", "Portcullis": "FastAPI Users"}
    tag = uuid.uuid4().hex[:6]
    users = {}

    # 1. register on each, log in on the other.
    for side in sides:
        address = f"{side.split()[0].lower()}.{tag}@Example.com"
        password = f"first-password-{tag}"
        status, body = call(sides[side], "POST", "/api/auth/register",
                            json_body={"email": address, "password": password})
        if status != 201:
            report(False, f"register on {side}", f"{status} {body}")
            continue
        users[side] = {"email": body["email"], "id": body["id"], "password": password}
        status, token = login(sides[other[side]], address.lower(), password)
        report(status == 200, f"registered on {side}, logs in on {other[side]}",
               f"{status}" if status != 200 else "")

    # 2. access tokens of each read /users/me on the other.
    for side, user in users.items():
        status, token = login(sides[side], user["email"], user["password"])
        if status != 200:
            report(False, f"log in on {side}", str(status))
            continue
        user["token_" + side] = token
        status, body = call(sides[other[side]], "GET", "/api/users/me", token=token)
        ok = status == 200 and body.get("id") == user["id"]
        report(ok, f"access token of {side} reads /users/me on {other[side]}",
               "" if ok else f"{status} {body}")

    # 3. forgot-password on each, reset on the other.
    for side, user in users.items():
        seen = mail_count()
        status, body = call(sides[side], "POST", "/api/auth/forgot-password",
                            json_body={"email": user["email"]})
        token = wait_for_token(user["email"], seen) if status == 202 else None
        if token is None:
            report(False, f"forgot-password on {side}", f"{status} {body}, no mail")
            continue
        new_password = f"reset-password-{tag}-{side.split()[0]}"
        status, body = call(sides[other[side]], "POST", "/api/auth/reset-password",
                            json_body={"token": token, "password": new_password})
        ok = status == 200
        if ok:
            user["password"] = new_password
            s1, _ = login(sides[side], user["email"], new_password)
            s2, _ = login(sides[other[side]], user["email"], new_password)
            ok = s1 == 200 and s2 == 200
            body = f"logins with the new password: {s1} on {side}, {s2} on {other[side]}"
        report(ok, f"reset link from {side} resets on {other[side]}", "" if ok else f"{status} {body}")

    # 4. request-verify on each, verify on the other.
    for side, user in users.items():
        seen = mail_count()
        status, body = call(sides[side], "POST", "/api/auth/request-verify-token",
                            json_body={"email": user["email"]})
        token = wait_for_token(user["email"], seen) if status == 202 else None
        if token is None:
            report(False, f"request-verify on {side}", f"{status} {body}, no mail")
            continue
        status, body = call(sides[other[side]], "POST", "/api/auth/verify", json_body={"token": token})
        ok = status == 200 and isinstance(body, dict) and body.get("is_verified") is True
        report(ok, f"verification link from {side} verifies on {other[side]}",
               "" if ok else f"{status} {body}")

    # 5. a bcrypt user: logs in on Portcullis, is rehashed, logs in on FastAPI Users.
    bcrypt_user(A, P, tag)

    # 6. a password changed on one works on the other.
    for side, user in users.items():
        status, token = login(sides[side], user["email"], user["password"])
        changed = f"changed-password-{tag}-{side.split()[0]}"
        status, body = call(sides[side], "PATCH", "/api/users/me",
                            json_body={"password": changed}, token=token)
        if status != 200:
            report(False, f"PATCH /users/me password on {side}", f"{status} {body}")
            continue
        s_new, _ = login(sides[other[side]], user["email"], changed)
        s_old, _ = login(sides[other[side]], user["email"], user["password"])
        user["password"] = changed
        ok = s_new == 200 and s_old == 400
        report(ok, f"password changed on {side} works on {other[side]} (old one refused)",
               "" if ok else f"new {s_new}, old {s_old}")

    # 7. what FastAPI Users does not see: Portcullis' revocation.
    user = users.get("Portcullis")
    if user:
        _, p_token = login(P, user["email"], user["password"])
        _, a_token = login(A, user["email"], user["password"])
        status, _ = call(P, "DELETE", "/api/users/me/sessions", token=p_token)
        report(status == 204, "DELETE /users/me/sessions on Portcullis", str(status))
        s_p, _ = call(P, "GET", "/api/users/me", token=p_token)
        s_pa, _ = call(P, "GET", "/api/users/me", token=a_token)
        report(s_p == 401 and s_pa == 401,
               "Portcullis refuses every earlier JWT after it (its own and FastAPI Users')",
               f"{s_p}, {s_pa}")
        s_a, _ = call(A, "GET", "/api/users/me", token=p_token)
        report("known" if s_a == 200 else False,
               "FastAPI Users still accepts the revoked JWT (it does not check the stamp)",
               f"GET /users/me on FastAPI Users: {s_a}")
        # a new login on either side works again on both. The stamp is the
        # revocation's time in ms and FastAPI Users' token is judged by
        # exp - lifetime in whole seconds: one minted within the revocation's
        # own second is refused (the safe side), so wait for the next one.
        time.sleep(1.0)
        _, fresh = login(A, user["email"], user["password"])
        s1, _ = call(P, "GET", "/api/users/me", token=fresh)
        report(s1 == 200,
               "a JWT FastAPI Users mints after it is accepted by Portcullis (no stamp "
               "claim: judged by exp - JWT_ACCESS_TOKEN_EXPIRE_MINUTES against the "
               "revocation's time)",
               f"GET /users/me on Portcullis: {s1}")
        _, fresh = login(P, user["email"], user["password"])
        s2, _ = call(A, "GET", "/api/users/me", token=fresh)
        s3, _ = call(P, "GET", "/api/users/me", token=fresh)
        report(s2 == 200 and s3 == 200, "a JWT Portcullis mints after it works on both",
               f"{s2}, {s3}")


def bcrypt_user(A, P, tag):
    try:
        import bcrypt
    except ImportError:
        report(False, "bcrypt user", "bcrypt is not installed in the venv (pip install bcrypt)")
        return
    address = f"bcrypt.{tag}@example.com"
    password = f"bcrypt-password-{tag}"
    status, body = call(A, "POST", "/api/auth/register",
                        json_body={"email": address, "password": f"placeholder-{tag}"})
    if status != 201:
        report(False, "register the bcrypt user", f"{status} {body}")
        return
    # What passlib's and pwdlib's bcrypt write (both call this library).
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(12, b"2b")).decode()
    db_set_hash(address, hashed)
    stored = db_hash(address)
    report(stored == hashed and stored.startswith("$2b$12$"),
           "bcrypt user written ($2b$12$…, as passlib and pwdlib write it)", stored[:7] if stored else "none")
    status, token = login(P, address, password)
    report(status == 200, "bcrypt user logs in on Portcullis", str(status))
    stored = db_hash(address) or ""
    report(stored.startswith("$argon2id$"), "Portcullis rehashed it", stored.split("$")[1] if "$" in stored else stored)
    # FastAPI Users verifies that argon2id hash (pwdlib then rewrites it
    # with its own parameters, which Portcullis verifies in turn).
    rehashed = stored.startswith("$argon2id$")
    status, _ = login(A, address, password)
    report(status == 200 and rehashed, "the rehashed user logs in on FastAPI Users",
           f"{status}" + ("" if rehashed else ", but the stored hash is not Portcullis' argon2id"))
    after = db_hash(address) or ""
    if after != stored and after.startswith("$argon2id$v=19$m=65536,t=3,p=4$"):
        report("known", "FastAPI Users rewrote it with pwdlib's argon2 parameters "
               "(m=65536,t=3,p=4) at that login")
    status, _ = login(P, address, password)
    report(status == 200, "and again on Portcullis", str(status))


if __name__ == "__main__":
    main()
