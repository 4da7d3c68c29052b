"""Fixtures written by FastAPI Users itself, for Portcullis' adoption tests.

Run through scripts/fastapi_users_fixtures.sh (it picks the reference venv).
Two modes:

  fastapi_users_fixtures.py serve PORT
      The reference service (../shared/reference/refapp.py, FastAPI Users
      15) as it is, with long token lifetimes: the JWT lifetime through its
      own JWT_ACCESS_TOKEN_EXPIRE_MINUTES, the reset and verification token
      lifetimes by setting the UserManager's class attributes
      (reset_password_token_lifetime_seconds,
      verification_token_lifetime_seconds), which FastAPI Users reads when it
      mints a token.

  fastapi_users_fixtures.py generate OUT_DIR PORT
      Starts `serve` on a fresh SQLite file (FastAPI Users' create_all makes
      the tables), registers users through its HTTP API (pwdlib argon2id,
      m=65536,t=3,p=4), adds users whose hashed_password was written by
      pwdlib's BcryptHasher and by passlib's bcrypt ($2a$, $2b$, $2y$)
      through FastAPI Users' own SQLAlchemyUserDatabase.create, then asks it
      for access tokens (POST /auth/jwt/login), reset tokens
      (/auth/forgot-password: read from the mail it logs) and verify tokens
      (/auth/request-verify-token: likewise). Writes OUT_DIR/fastapi_users.db
      and OUT_DIR/fixtures.json.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))

# Secrets of the fixture (HS256 keys of at least 32 bytes: Portcullis
# refuses shorter ones, as josekit does). Tests configure Portcullis with them.
JWT_SECRET = "fixture-jwt-secret-fastapi-users-0123456789abcdef"
RESET_SECRET = "fixture-reset-secret-fastapi-users-0123456789abc"
VERIFY_SECRET = "fixture-verify-secret-fastapi-users-0123456789ab"
# 50 years: the tokens outlive the fixture's use (they expire around 2076).
LIFETIME_SECONDS = 50 * 365 * 24 * 3600
SUPERUSER = ("admin@example.com", "admin-password-fixture")
# passlib's and pwdlib's default bcrypt cost.
BCRYPT_ROUNDS = 12

# (email, password, scheme): "argon2" users register through the HTTP API;
# the others are written with the named library's hash.
USERS = [
    ("alice@example.com", "alice-argon2-password", "argon2"),
    ("bruno@example.com", "pässwörd-ünïcödé-argon2", "argon2"),
    ("carol@example.com", "carol-pwdlib-bcrypt-2b", "pwdlib-bcrypt-2b"),
    ("dave@example.com", "dave-passlib-bcrypt-2a", "passlib-bcrypt-2a"),
    ("erin@example.com", "erin-passlib-bcrypt-2b", "passlib-bcrypt-2b"),
    ("frank@example.com", "frank-passlib-bcrypt-2y", "passlib-bcrypt-2y"),
    # 80 bytes: bcrypt reads the first 72 only (passlib truncates).
    ("gina@example.com", "gina-passlib-bcrypt-2b-longer-than-72-bytes-" + "x" * 36, "passlib-bcrypt-2b"),
]


def reference_dir():
    return os.environ.get("REFERENCE_DIR") or os.path.join(HERE, "..", "..", "shared", "reference")


def import_refapp(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ["JWT_SECRET_KEY"] = JWT_SECRET
    os.environ["AUTH_RESET_PASSWORD_TOKEN_SECRET"] = RESET_SECRET
    os.environ["AUTH_VERIFICATION_TOKEN_SECRET"] = VERIFY_SECRET
    os.environ["JWT_ACCESS_TOKEN_EXPIRE_MINUTES"] = str(LIFETIME_SECONDS // 60)
    os.environ["FIRST_SUPERUSER_EMAIL"], os.environ["FIRST_SUPERUSER_PASSWORD"] = SUPERUSER
    os.environ.pop("SMTP_HOST", None)  # mails go to the log, tokens included
    sys.path.insert(0, os.path.abspath(reference_dir()))
    import refapp

    refapp.UserManager.reset_password_token_lifetime_seconds = LIFETIME_SECONDS
    refapp.UserManager.verification_token_lifetime_seconds = LIFETIME_SECONDS
    return refapp


def serve(port):
    import uvicorn

    refapp = import_refapp(os.environ["FIXTURE_DATABASE_URL"])
    uvicorn.run(refapp.app, host="127.0.0.1", port=port, log_level="warning")


# --- hashes written by the real libraries ----------------------------------


def passlib_bcrypt():
    """passlib's bcrypt handler. FastAPI Users < 13 used it with the `bcrypt`
    package (< 4.1); bcrypt 5 (which pwdlib brings here) breaks passlib 1.7's
    backend self-test, so passlib's `os_crypt` backend (libxcrypt's bcrypt)
    is used then. Returns (handler, backend name)."""
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("passlib").setLevel(logging.CRITICAL)
    from passlib.hash import bcrypt

    for backend in ("bcrypt", "os_crypt"):
        try:
            bcrypt.set_backend(backend)
            return bcrypt, backend
        except Exception:  # noqa: BLE001 - try the next backend
            continue
    raise SystemExit("passlib has no working bcrypt backend (pip install passlib; needs bcrypt<4.1 or crypt)")


def hash_for(scheme, password, passlib_handler):
    if scheme == "pwdlib-bcrypt-2b":
        from pwdlib.hashers.bcrypt import BcryptHasher

        return BcryptHasher(rounds=BCRYPT_ROUNDS).hash(password)
    ident = scheme.rsplit("-", 1)[1]
    return passlib_handler.using(rounds=BCRYPT_ROUNDS, ident=ident).hash(password)


async def insert_user(refapp, email, hashed_password):
    """Writes the row with FastAPI Users' own SQLAlchemy user database."""
    from fastapi_users.db import SQLAlchemyUserDatabase

    async with refapp.session_maker() as session:
        user = await SQLAlchemyUserDatabase(session, refapp.User).create(
            {"email": email, "hashed_password": hashed_password}
        )
        return str(user.id)


# --- HTTP ------------------------------------------------------------------


def call(base, method, path, body=None, form=False, token=None):
    headers = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def expect(status, body, wanted, what):
    if status != wanted:
        raise SystemExit(f"{what}: FastAPI Users answered {status} {body}, expected {wanted}")
    return body


def wait_for(condition, what, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def mailed_token(log_path, email, subject):
    pattern = re.compile(rf"^\[mail to {re.escape(email)}\] {re.escape(subject)}: .*[?&]token=(\S+)$", re.M)

    def find():
        with open(log_path, encoding="utf-8") as log:
            match = pattern.search(log.read())
        return match and match.group(1)

    return wait_for(find, f"the mail '{subject}' to {email}")


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- generate ----------------------------------------------------------------


def generate(out_dir, port):
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fastapi-users-fixtures-")
    db_path = os.path.join(work, "fastapi_users.db")
    log_path = os.path.join(work, "server.log")
    database_url = f"sqlite+aiosqlite:///{db_path}"
    base = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ, FIXTURE_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "serve", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        def healthy():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"the reference service exited:\n{open(log_path).read()}")
                return False

        wait_for(healthy, "the reference service")
        refapp = import_refapp(database_url)  # the same tables, for the direct inserts
        passlib_handler, passlib_backend = passlib_bcrypt()

        users = []
        for email, password, scheme in USERS:
            if scheme == "argon2":
                body = expect(
                    *call(base, "POST", "/auth/register", {"email": email, "password": password}),
                    201,
                    f"register {email}",
                )
                user_id = body["id"]
            else:
                user_id = asyncio.run(insert_user(refapp, email, hash_for(scheme, password, passlib_handler)))
            users.append({"id": user_id, "email": email, "password": password, "scheme": scheme})

        admin_email, admin_password = SUPERUSER
        tokens = []
        # Access tokens: argon2 users only. A login of a bcrypt user on
        # FastAPI Users re-hashes it to argon2 (pwdlib's verify_and_update),
        # which would spoil the bcrypt fixture.
        for email, password in [(admin_email, admin_password)] + [
            (u["email"], u["password"]) for u in users if u["scheme"] == "argon2"
        ]:
            body = expect(
                *call(base, "POST", "/auth/jwt/login", {"username": email, "password": password}, form=True),
                200,
                f"login {email}",
            )
            tokens.append({"purpose": "access", "email": email, "token": body["access_token"]})
        for user in users:
            email = user["email"]
            expect(*call(base, "POST", "/auth/forgot-password", {"email": email}), 202, f"forgot {email}")
            token = mailed_token(log_path, email, "Reset your password")
            tokens.append({"purpose": "reset", "email": email, "token": token})
            expect(*call(base, "POST", "/auth/request-verify-token", {"email": email}), 202, f"verify {email}")
            token = mailed_token(log_path, email, "Verify your e-mail")
            tokens.append({"purpose": "verify", "email": email, "token": token})
    finally:
        server.terminate()
        server.wait(timeout=30)

    # What FastAPI Users stored, read back from its database.
    import sqlite3

    connection = sqlite3.connect(db_path)
    rows = {
        email: (user_id, hashed, bool(active), bool(superuser), bool(verified))
        for user_id, email, hashed, active, superuser, verified in connection.execute(
            'SELECT id, email, hashed_password, is_active, is_superuser, is_verified FROM "user"'
        )
    }
    connection.close()
    admin_id = rows[admin_email][0]
    everyone = [{"id": admin_id, "email": admin_email, "password": admin_password, "scheme": "argon2"}] + users
    for user in everyone:
        row_id, hashed, active, superuser, verified = rows[user["email"]]
        user["id"] = str(uuid.UUID(row_id))
        user["hashed_password"] = hashed
        user.update(is_active=active, is_superuser=superuser, is_verified=verified)
    by_email = {u["email"]: u["id"] for u in everyone}
    for token in tokens:
        claims = claims_of(token["token"])
        token["user_id"] = by_email[token["email"]]
        token["aud"] = claims["aud"]
        token["exp"] = claims["exp"]
        if claims["sub"] != token["user_id"]:
            raise SystemExit(f"{token['purpose']} token of {token['email']} has sub {claims['sub']}")

    shutil.copyfile(db_path, os.path.join(out_dir, "fastapi_users.db"))
    fixture = {
        "_comment": "Written by scripts/fastapi_users_fixtures.sh: users, hashes and tokens made by FastAPI Users "
        "15 (refapp.py) and by pwdlib/passlib; fastapi_users.db is the SQLite file FastAPI Users created. "
        "Do not edit by hand; re-run the script.",
        "made_with": {
            "fastapi-users": metadata.version("fastapi-users"),
            "pwdlib": metadata.version("pwdlib"),
            "passlib": metadata.version("passlib"),
            "bcrypt (python)": metadata.version("bcrypt"),
            "passlib bcrypt backend": passlib_backend,
            "bcrypt cost": BCRYPT_ROUNDS,
        },
        "secrets": {
            "JWT_SECRET_KEY": JWT_SECRET,
            "AUTH_RESET_PASSWORD_TOKEN_SECRET": RESET_SECRET,
            "AUTH_VERIFICATION_TOKEN_SECRET": VERIFY_SECRET,
        },
        "token_lifetime_seconds": LIFETIME_SECONDS,
        "users": everyone,
        "tokens": tokens,
    }
    with open(os.path.join(out_dir, "fixtures.json"), "w", encoding="utf-8") as out:
        json.dump(fixture, out, indent=2, ensure_ascii=False)
        out.write("\n")
    shutil.rmtree(work)
    print(f"wrote {out_dir}/fastapi_users.db and fixtures.json: {len(everyone)} users, {len(tokens)} tokens")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
