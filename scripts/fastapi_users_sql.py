"""Captures, from the real FastAPI Users (the reference service in
../shared/reference, refapp.py), the schema it creates and every SQL
statement it sends for its account routes, as test fixtures.

Run by scripts/fastapi_users_schema.sh (which says how); not meant to be run
alone. Usage:

    python fastapi_users_sql.py DATABASE_URL DIALECT OUT_DIR

DATABASE_URL is an empty database (sqlite+aiosqlite:///FILE or
postgresql+asyncpg://…); DIALECT (`sqlite`, `postgres`) names the files:

    OUT_DIR/DIALECT_schema.sql   the DDL its `create_all` sent, in order
    OUT_DIR/DIALECT_steps.json   per step (register, login, …): the route
                                 called, its answer, and every statement
                                 the route sent, with its parameters

Statements are recorded where SQLAlchemy hands them to the driver
(`before_cursor_execute`), so they are exactly what FastAPI Users issues
(placeholders `?` on SQLite, `$1…` on PostgreSQL). Each parameter is tagged
with its Python type: {"text": …}, {"bool": …}, {"int": …}, {"uuid": …},
{"datetime": …} or null.

The app is called in process through its ASGI interface (no server, no
port): the same router, dependencies and session handling as over HTTP.
"""

import asyncio
import datetime
import json
import os
import sys
import uuid
from urllib.parse import urlencode

DATABASE_URL, DIALECT, OUT_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
# `oauth`: capture the OAuth account table instead (see oauth_main).
MODE = sys.argv[4] if len(sys.argv) > 4 else "routes"
os.environ["DATABASE_URL"] = DATABASE_URL
# The reference's own defaults (refapp.py), stated so the fixtures say
# which secrets minted their tokens.
os.environ.setdefault("JWT_SECRET_KEY", "jwt-secret-for-tests-only-0123456789abcdef")
os.environ.setdefault("AUTH_RESET_PASSWORD_TOKEN_SECRET", "reset-secret-for-tests-only-0123456789")
os.environ.setdefault("AUTH_VERIFICATION_TOKEN_SECRET", "verify-secret-for-tests-only-012345678")
os.environ["FIRST_SUPERUSER_EMAIL"] = "admin@example.com"
os.environ["FIRST_SUPERUSER_PASSWORD"] = "admin-password-1"
os.environ.pop("SMTP_HOST", None)

import refapp  # noqa: E402  (the environment above configures it)
from sqlalchemy import event  # noqa: E402

if MODE == "oauth":
    # FastAPI Users' OAuth set-up as its documentation gives it: the
    # OAuthAccount table (SQLAlchemyBaseOAuthAccountTableUUID) and the
    # user's `oauth_accounts` relationship, joined-loaded.
    from fastapi_users_db_sqlalchemy import SQLAlchemyBaseOAuthAccountTableUUID
    from sqlalchemy.orm import relationship

    class OAuthAccount(SQLAlchemyBaseOAuthAccountTableUUID, refapp.Base):
        pass

    refapp.User.oauth_accounts = relationship(OAuthAccount, lazy="joined")

recorded = []
mails = []


def tag(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    raise TypeError(f"parameter of unexpected type {type(value)!r}: {value!r}")


@event.listens_for(refapp.engine.sync_engine, "before_cursor_execute")
def record(conn, cursor, statement, parameters, context, executemany):
    if executemany:
        raise AssertionError(f"executemany not expected: {statement}")
    params = parameters if isinstance(parameters, (list, tuple)) else ()
    recorded.append({"sql": statement, "params": [tag(p) for p in params]})


def fake_mail(to, subject, body):
    mails.append({"to": to, "subject": subject, "body": body})


refapp.send_mail = fake_mail


async def call(method, path, *, json_body=None, form=None, token=None):
    """One request through the app's ASGI interface: (status, body)."""
    headers = []
    body = b""
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.append((b"content-type", b"application/json"))
    elif form is not None:
        body = urlencode(form).encode()
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status, chunks = None, []

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await refapp.app(scope, receive, send)
    raw = b"".join(chunks)
    return status, (json.loads(raw) if raw else None)


steps = []


async def step(name, method, path, expect, **kwargs):
    start = len(recorded)
    status, body = await call(method, path, **kwargs)
    if status != expect:
        raise SystemExit(f"{name}: {method} {path} answered {status} {body}, expected {expect}")
    steps.append({
        "step": name, "request": f"{method} {path}", "status": status, "response": body,
        "statements": recorded[start:],
    })
    return body


def token_from_last_mail():
    return mails[-1]["body"].rsplit("token=", 1)[1].strip()


async def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    async with refapp.lifespan(refapp.app):
        ddl = [r["sql"].strip() for r in recorded if r["sql"].lstrip().upper().startswith("CREATE")]
        with open(os.path.join(OUT_DIR, f"{DIALECT}_schema.sql"), "w") as f:
            f.write(f"-- The schema FastAPI Users {refapp_version()} (SQLAlchemy "
                    f"{sqlalchemy_version()}) creates on {DIALECT}: the DDL its create_all sent,\n"
                    "-- captured by scripts/fastapi_users_schema.sh. Do not edit.\n")
            for statement in ddl:
                f.write(statement + ";\n\n")
        start_of_routes = len(recorded)
        del start_of_routes

        password = "fleet-password-1"
        user = await step("register", "POST", "/api/auth/register", 201,
                          json_body={"email": "Fleet.User@Example.COM", "password": password})
        login = await step("login", "POST", "/api/auth/jwt/login", 200,
                           form={"username": "fleet.user@example.com", "password": password})
        token = login["access_token"]
        await step("me", "GET", "/api/users/me", 200, token=token)
        password2 = "fleet-password-2"
        await step("change_password", "PATCH", "/api/users/me", 200,
                   json_body={"password": password2}, token=token)
        await step("login_after_change", "POST", "/api/auth/jwt/login", 200,
                   form={"username": "Fleet.User@example.com", "password": password2})
        admin = await call("POST", "/api/auth/jwt/login",
                           form={"username": "admin@example.com", "password": "admin-password-1"})
        admin_token = admin[1]["access_token"]
        await step("admin_update", "PATCH", f"/api/users/{user['id']}", 200,
                   json_body={"email": "Fleet.Renamed@example.com", "role": "instructor",
                              "is_verified": False}, token=admin_token)
        await step("forgot_password", "POST", "/api/auth/forgot-password", 202,
                   json_body={"email": "fleet.renamed@example.com"})
        reset_token = token_from_last_mail()
        password3 = "fleet-password-3"
        await step("reset_password", "POST", "/api/auth/reset-password", 200,
                   json_body={"token": reset_token, "password": password3})
        await step("request_verify", "POST", "/api/auth/request-verify-token", 202,
                   json_body={"email": "fleet.renamed@example.com"})
        verify_token = token_from_last_mail()
        await step("verify", "POST", "/api/auth/verify", 200, json_body={"token": verify_token})
        await step("register_second", "POST", "/api/auth/register", 201,
                   json_body={"email": "second@example.com", "password": password})
        second = steps[-1]["response"]
        await step("admin_delete", "DELETE", f"/api/users/{second['id']}", 204, token=admin_token)

    with open(os.path.join(OUT_DIR, f"{DIALECT}_steps.json"), "w") as f:
        json.dump({
            "captured_by": "scripts/fastapi_users_schema.sh",
            "fastapi_users": refapp_version(),
            "sqlalchemy": sqlalchemy_version(),
            "dialect": DIALECT,
            "steps": steps,
        }, f, indent=1, ensure_ascii=False)
        f.write("\n")
    await refapp.engine.dispose()


def refapp_version():
    from importlib.metadata import version
    return version("fastapi-users")


def sqlalchemy_version():
    import sqlalchemy
    return sqlalchemy.__version__


async def oauth_main():
    """The OAuth account table: its DDL (OUT_DIR/DIALECT_oauth_schema.sql)
    and the statements of FastAPI Users' SQLAlchemyUserDatabase methods its
    OAuth router calls (OUT_DIR/DIALECT_oauth_steps.json): on a user its
    register route created, add_oauth_account, get_by_oauth_account (a
    known and an unknown account) and update_oauth_account."""
    os.makedirs(OUT_DIR, exist_ok=True)
    async with refapp.lifespan(refapp.app):
        ddl = [r["sql"].strip() for r in recorded
               if r["sql"].lstrip().upper().startswith("CREATE") and "oauth_account" in r["sql"]]
        with open(os.path.join(OUT_DIR, f"{DIALECT}_oauth_schema.sql"), "w") as f:
            f.write(f"-- The OAuth account table FastAPI Users {refapp_version()} "
                    f"(fastapi-users-db-sqlalchemy {db_adapter_version()}, SQLAlchemy "
                    f"{sqlalchemy_version()}) creates on {DIALECT}\n"
                    "-- (SQLAlchemyBaseOAuthAccountTableUUID): the DDL its create_all sent, "
                    "captured by scripts/fastapi_users_schema.sh. Do not edit.\n")
            for statement in ddl:
                f.write(statement + ";\n\n")
        user = await step("register", "POST", "/api/auth/register", 201,
                          json_body={"email": "social.user@example.com",
                                     "password": "social-password-1"})

        async def db_step(name, method):
            start = len(recorded)
            async with refapp.session_maker() as session:
                user_db = refapp.SQLAlchemyUserDatabase(session, refapp.User, OAuthAccount)
                result = await method(user_db)
            steps.append({"step": name, "response": result, "statements": recorded[start:]})

        def account_read(account):
            return {key: getattr(account, key) for key in (
                "id", "oauth_name", "access_token", "expires_at", "refresh_token",
                "account_id", "account_email", "user_id")}

        def as_json(value):
            return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in value.items()}

        async def add(user_db):
            found = await user_db.get(uuid.UUID(user["id"]))
            found = await user_db.add_oauth_account(found, {
                "oauth_name": "github", "access_token": "gho_first_access_token",
                "expires_at": 1767225600, "refresh_token": None,
                "account_id": "4242", "account_email": "social.user@example.com"})
            return [as_json(account_read(a)) for a in found.oauth_accounts]

        async def get_known(user_db):
            found = await user_db.get_by_oauth_account("github", "4242")
            return {"id": str(found.id), "email": found.email,
                    "oauth_accounts": [as_json(account_read(a)) for a in found.oauth_accounts]}

        async def get_unknown(user_db):
            found = await user_db.get_by_oauth_account("github", "no-such-account")
            return None if found is None else str(found.id)

        async def update(user_db):
            found = await user_db.get_by_oauth_account("github", "4242")
            account = found.oauth_accounts[0]
            found = await user_db.update_oauth_account(found, account, {
                "access_token": "gho_second_access_token", "expires_at": 1767229200,
                "refresh_token": "ghr_refresh_token",
                "account_email": "Social.User@example.com"})
            return [as_json(account_read(a)) for a in found.oauth_accounts]

        await db_step("add_oauth_account", add)
        await db_step("get_by_oauth_account", get_known)
        await db_step("get_by_oauth_account_unknown", get_unknown)
        await db_step("update_oauth_account", update)

    with open(os.path.join(OUT_DIR, f"{DIALECT}_oauth_steps.json"), "w") as f:
        json.dump({
            "captured_by": "scripts/fastapi_users_schema.sh",
            "fastapi_users": refapp_version(),
            "fastapi_users_db_sqlalchemy": db_adapter_version(),
            "sqlalchemy": sqlalchemy_version(),
            "dialect": DIALECT,
            "steps": steps,
        }, f, indent=1, ensure_ascii=False)
        f.write("\n")
    await refapp.engine.dispose()


def db_adapter_version():
    from importlib.metadata import version
    return version("fastapi-users-db-sqlalchemy")


asyncio.run(oauth_main() if MODE == "oauth" else main())
