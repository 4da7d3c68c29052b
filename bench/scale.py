#!/usr/bin/env python3
"""Issue 16, scale: the same figures with 1 000 and with 1 000 000 users.

Run through bench/scale.sh (which builds the release binary and gives a
throwaway PostgreSQL cluster); see there for the usage and the results.

For each store and each size: a fresh database, migrated by the server
itself (its first start, which also creates the first superuser, whose
argon2 hash becomes every user's), then the other users bulk-loaded
outside Portcullis (SQLite: Python's sqlite3 in one transaction; PostgreSQL:
psql's COPY, then VACUUM ANALYZE as after any bulk load) as rows exactly as
Portcullis writes them: a random UUID (SQLite: hyphenated lowercase text),
`userN@example.com`, the shared hash, active, neither superuser nor
verified, role `student`, session stamp 0. Then, per size:

- start-up: exec to the first 200 on /health (median of 3 starts), and
  `portcullis migrate` on the loaded database (nothing pending: must not
  scan the table);
- `me` (64 connections; each request a random user's token, out of up to
  20 000 users spread over the whole table, so that the rows read are not
  one hot page), `by_id` (64 connections, a random user's id, the
  superuser's token) and login (16 connections, a random user's good
  password) with wrk; both sizes' servers run side by side and the rounds
  alternate between them, so that the ratios see the same machine;
- the server's CPU per request (and PostgreSQL's: every process of the
  cluster), which moves less than req/s with what else the machine runs;
- register: one new user at a time (median of 7), next to a login at one
  connection (one hash and the store's look-ups; the hash time reference);
- the database size.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

BIN = os.environ["PORTCULLIS_BIN"]
SIZES = [int(s) for s in os.environ.get("SCALE_SIZES", "1000 1000000").split()]
STORES = os.environ.get("SCALE_STORES", "sqlite postgres").split()
ROUNDS = int(os.environ.get("SCALE_ROUNDS", "3"))
SECONDS = int(os.environ.get("SCALE_SECONDS", "8"))
PG_URL = os.environ.get("PORTCULLIS_TEST_POSTGRES_URL")
PGDATA = os.environ.get("PORTCULLIS_TEST_PGDATA")
PORT_BASE = int(os.environ.get("SCALE_PORT_BASE", "9400"))
SAMPLE = 20_000
SPARE = 7
PASSWORD = "bench password 1"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123"
ADMIN = "admin@example.com"
COLUMNS = (
    "id, email, hashed_password, is_active, is_superuser, is_verified, role, "
    "portcullis_session_stamp"
)

WORK = tempfile.mkdtemp(prefix="portcullis-scale-")
HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "scale.lua")
ports = iter(range(PORT_BASE, PORT_BASE + 100))


def env_for(url, port):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        PORT=str(port),
        RUST_LOG="warn",
        RATE_LIMIT_AUTH_PER_MINUTE="0",
        ARGON2_MEMORY_KIB="8192",
        ARGON2_ITERATIONS="1",
        JWT_SECRET_KEY=JWT_SECRET,
        AUTH_RESET_PASSWORD_TOKEN_SECRET="bench-reset-secret-0123456789abcdef01",
        AUTH_VERIFICATION_TOKEN_SECRET="bench-verify-secret-0123456789abcdef0",
        FIRST_SUPERUSER_EMAIL=ADMIN,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
    )
    return env


def health(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


RUNNING = []


class Server:
    """One `portcullis serve`; `startup_ms` is exec to the first 200 on /health."""

    def __init__(self, url, port, log):
        self.port = port
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [BIN, "serve"], env=env_for(url, port), stdout=log, stderr=log
        )
        while not health(port):
            if self.proc.poll() is not None:
                # The log goes with the run's folder: its end is shown here
                # (e.g. a port another process holds).
                log.flush()
                with open(log.name, errors="replace") as said:
                    tail = "".join(said.readlines()[-10:])
                sys.exit(f"the server on {url} exited ({self.proc.returncode}); its log ends:\n{tail}")
            if time.perf_counter() - start > 120:
                sys.exit(f"the server on {url} did not answer /health in 120 s")
            time.sleep(0.002)
        self.startup_ms = (time.perf_counter() - start) * 1000
        RUNNING.append(self)

    def cpu_ticks(self):
        return proc_ticks(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        RUNNING.remove(self)


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def pg_ticks():
    """CPU ticks of every process of the PostgreSQL cluster (0 without one)."""
    if not PGDATA:
        return 0
    with open(os.path.join(PGDATA, "postmaster.pid")) as f:
        master = int(f.readline())
    total = proc_ticks(master)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == master:
                total += proc_ticks(int(pid))
    return total


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(user_id):
    """An HS256 access token as Portcullis issues it (stamp 0: no claim)."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": user_id, "aud": ["fastapi-users:auth"], "exp": int(time.time()) + 86400}
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(JWT_SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(sig)}"


def psql(url, sql, stdin=None):
    return subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        input=stdin, check=True, capture_output=True, text=True,
    ).stdout.strip()


class Database:
    """A fresh database of `n` users for `store`, loaded as described above."""

    def __init__(self, store, n):
        self.store, self.n = store, n
        if store == "sqlite":
            self.path = os.path.join(WORK, f"scale-{n}.db")
            self.url = f"sqlite://{self.path}"
        else:
            if not PG_URL:
                sys.exit("postgres: run through bench/scale.sh (scripts/with-postgres)")
            name = f"portcullis_scale_{n}"
            psql(PG_URL, f"DROP DATABASE IF EXISTS {name}")
            psql(PG_URL, f"CREATE DATABASE {name}")
            self.url = PG_URL.rsplit("/", 1)[0] + "/" + name
        self.log = open(os.path.join(WORK, f"server-{store}-{n}.log"), "ab")
        first = Server(self.url, next(ports), self.log)  # migrates, makes the admin
        first.stop()
        self.admin_id, self.hash = self.query_admin()
        start = time.perf_counter()
        rng = random.Random(n)
        self.ids = []  # a sample of the loaded users: (id, email)
        self.spare = []  # others, for the sign-outs: (id, email)
        picked = rng.sample(range(1, n), min(SAMPLE + SPARE, n - 1))
        keep, spare = set(picked[:-SPARE]), set(picked[-SPARE:])
        rows = list(self.rows(n, rng, keep, spare))
        # One opaque session (the `database` strategy's accesstoken row) per
        # user, created now.
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
        if store == "sqlite":
            con = sqlite3.connect(self.path)
            with con:
                con.executemany(
                    f'INSERT INTO "user" ({COLUMNS}) VALUES (?, ?, ?, 1, 0, 0, \'student\', 0)',
                    rows,
                )
                con.executemany(
                    "INSERT INTO accesstoken (user_id, token, created_at) VALUES (?, ?, ?)",
                    ((i, secrets.token_urlsafe(32), now) for i, _, _ in rows),
                )
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
        else:
            data = "".join(f"{i}\t{e}\t{h}\tt\tf\tf\tstudent\t0\n" for i, e, h in rows)
            psql(self.url, f'\\copy "user" ({COLUMNS}) FROM pstdin', stdin=data)
            data = "".join(f"{i}\t{secrets.token_urlsafe(32)}\t{now}+00\n" for i, _, _ in rows)
            psql(self.url, "\\copy accesstoken (user_id, token, created_at) FROM pstdin", stdin=data)
            psql(self.url, "VACUUM ANALYZE")
        del rows
        self.load_s = time.perf_counter() - start

    def rows(self, n, rng, keep, spare):
        for i in range(1, n):
            user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            email = f"user{i}@example.com"
            if i in keep:
                self.ids.append((user_id, email))
            elif i in spare:
                self.spare.append((user_id, email))
            yield user_id, email, self.hash

    def query_admin(self):
        if self.store == "sqlite":
            con = sqlite3.connect(self.path)
            row = con.execute(
                'SELECT id, hashed_password FROM "user" WHERE email = ?', (ADMIN,)
            ).fetchone()
            con.close()
            return row
        out = psql(self.url, f"SELECT id || ' ' || hashed_password FROM \"user\" WHERE email = '{ADMIN}'")
        return tuple(out.split(" ", 1))

    def size_mb(self):
        if self.store == "sqlite":
            return sum(
                os.path.getsize(p)
                for p in (self.path, self.path + "-wal", self.path + "-shm")
                if os.path.exists(p)
            ) / 2**20
        return int(psql(self.url, "SELECT pg_database_size(current_database())")) / 2**20

    def users(self):
        if self.store == "sqlite":
            con = sqlite3.connect(self.path)
            count = con.execute('SELECT count(*) FROM "user"').fetchone()[0]
            con.close()
            return count
        return int(psql(self.url, 'SELECT count(*) FROM "user"'))


def migrate_ms(db):
    start = time.perf_counter()
    subprocess.run([BIN, "migrate"], env=env_for(db.url, 0), check=True,
                   stdout=db.log, stderr=db.log)
    return (time.perf_counter() - start) * 1000


def wrk(port, mode, items, admin_token, connections, seconds=SECONDS):
    listing = os.path.join(WORK, f"{mode}-{port}.txt")
    with open(listing, "w") as f:
        f.write("\n".join(items) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", LUA,
         f"http://127.0.0.1:{port}", "--", mode, listing, admin_token],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    # Timeouts (wrk's 2 s) are the machine's load, not an error; counted.
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and int(errors.group(4)):
        print(f"  ({errors.group(4)} requests over wrk's 2 s timeout)", file=sys.stderr)
    if bad or (errors and any(int(errors.group(k)) for k in (1, 2, 3))):
        sys.exit(f"wrk {mode} on port {port}: {bad and bad.group(0)} {errors and errors.group(0)}\n{out}")
    return rps, done


def post(port, path, body, content_type, method="POST", token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {token}"
    start = time.perf_counter()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    ms = (time.perf_counter() - start) * 1000
    c.close()
    return r.status, ms


def one_at_a_time(port, db):
    reg, login, out = [], [], []
    for k in range(SPARE):
        email = f"new{k}-{time.time_ns()}@example.com"
        status, ms = post(port, "/api/auth/register",
                          json.dumps({"email": email, "password": PASSWORD}), "application/json")
        assert status == 201, status
        reg.append(ms)
        _, user = random.choice(db.ids)
        status, ms = post(port, "/api/auth/jwt/login",
                          f"username={user}&password={PASSWORD.replace(' ', '%20')}",
                          "application/x-www-form-urlencoded")
        assert status == 200, status
        login.append(ms)
        # Sign out everywhere: raises the stamp, deletes the user's opaque
        # sessions (DELETE FROM accesstoken WHERE user_id = …).
        user_id, _ = db.spare[k]
        status, ms = post(port, "/api/users/me/sessions", None, "text/plain", "DELETE",
                          access_token(user_id))
        assert status == 204, status
        out.append(ms)
    return statistics.median(reg), statistics.median(login), statistics.median(out)


def bench_store(store):
    results = {}
    servers = {}
    dbs = {}
    for n in SIZES:
        print(f"[{store}] loading {n} users …", file=sys.stderr, flush=True)
        db = Database(store, n)
        dbs[n] = db
        r = results[n] = {"load_s": db.load_s, "size_mb": db.size_mb(), "users": db.users()}
        r["migrate_ms"] = migrate_ms(db)
        starts = []
        for attempt in range(3):
            server = Server(db.url, next(ports), db.log)
            starts.append(server.startup_ms)
            if attempt < 2:
                server.stop()
        r["startup_ms"] = statistics.median(starts)
        servers[n] = server
        print(f"[{store}] {n}: {r}", file=sys.stderr, flush=True)

    cfg = {
        "me": (64, lambda db: [access_token(i) for i, _ in db.ids]),
        "by_id": (64, lambda db: [i for i, _ in db.ids]),
        "login": (16, lambda db: [e for _, e in db.ids]),
    }
    for mode, (conns, items_of) in cfg.items():
        items = {n: items_of(dbs[n]) for n in SIZES}
        for n in SIZES:  # warm-up
            wrk(servers[n].port, mode, items[n], access_token(dbs[n].admin_id), conns, 3)
        for rnd in range(ROUNDS):
            for n in (SIZES if rnd % 2 == 0 else SIZES[::-1]):
                s = servers[n]
                t0, d0 = s.cpu_ticks(), pg_ticks()
                rps, done = wrk(s.port, mode, items[n], access_token(dbs[n].admin_id), conns)
                cpu = (s.cpu_ticks() - t0) / os.sysconf("SC_CLK_TCK") * 1e6 / done
                dbcpu = (pg_ticks() - d0) / os.sysconf("SC_CLK_TCK") * 1e6 / done
                results[n].setdefault(mode, []).append((rps, cpu, dbcpu))
                print(f"[{store}] {n} {mode} round {rnd + 1}: {rps:.0f} req/s, "
                      f"server CPU {cpu:.0f} us/req, database CPU {dbcpu:.0f} us/req",
                      file=sys.stderr, flush=True)
    for n in SIZES:
        r = results[n]
        r["register_ms"], r["login1_ms"], r["signout_ms"] = one_at_a_time(servers[n].port, dbs[n])
        print(f"[{store}] {n}: register {r['register_ms']:.1f} ms, login at one connection "
              f"{r['login1_ms']:.1f} ms, sign-out everywhere {r['signout_ms']:.1f} ms",
              file=sys.stderr, flush=True)
        servers[n].stop()
        results[n]["size_after_mb"] = dbs[n].size_mb()
    return results


def med(values, k):
    return statistics.median(v[k] for v in values)


def main():
    table = {store: bench_store(store) for store in STORES}
    head = ("users", "store", "me rps", "me CPU us", "by_id rps", "by_id CPU us",
            "login rps", "start-up ms", "migrate ms", "register ms", "login@1 ms",
            "sign-out ms", "DB MiB", "load s")
    print("\nmedians of %d rounds of %d s; CPU = server + database, per request" % (ROUNDS, SECONDS))
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for store, results in table.items():
        for n in SIZES:
            r = results[n]
            print("| " + " | ".join([
                f"{r['users']:,}", store,
                f"{med(r['me'], 0):.0f}", f"{med(r['me'], 1) + med(r['me'], 2):.0f}",
                f"{med(r['by_id'], 0):.0f}", f"{med(r['by_id'], 1) + med(r['by_id'], 2):.0f}",
                f"{med(r['login'], 0):.0f}", f"{r['startup_ms']:.0f}", f"{r['migrate_ms']:.0f}",
                f"{r['register_ms']:.1f}", f"{r['login1_ms']:.1f}",
                f"{r['signout_ms']:.1f}",
                f"{r['size_mb']:.1f}", f"{r['load_s']:.1f}",
            ]) + " |")
    if len(SIZES) == 2:
        small, big = SIZES
        print(f"\nratios {big:,} / {small:,} users (1.00 = no change; rps >= 0.90 is the goal)")
        print("| store | me rps | by_id rps | login rps | me CPU | by_id CPU |")
        print("|---|---|---|---|---|---|")
        for store, results in table.items():
            a, b = results[small], results[big]
            cpu = lambda r, m: med(r[m], 1) + med(r[m], 2)
            print(f"| {store} | {med(b['me'], 0) / med(a['me'], 0):.2f} | "
                  f"{med(b['by_id'], 0) / med(a['by_id'], 0):.2f} | "
                  f"{med(b['login'], 0) / med(a['login'], 0):.2f} | "
                  f"{cpu(b, 'me') / cpu(a, 'me'):.2f} | {cpu(b, 'by_id') / cpu(a, 'by_id'):.2f} |")
        # The host's speed drifts by tens of percent within seconds; the
        # rounds of both sizes alternate (1k, 1M, 1M, 1k, …), so each round's
        # pair ran side by side: the median of the pairs' ratios is the
        # figure least moved by the drift.
        print(f"\nthe same, as the median of each round's pair ({ROUNDS} pairs)")
        print("| store | me rps | by_id rps | login rps | me CPU | by_id CPU |")
        print("|---|---|---|---|---|---|")
        for store, results in table.items():
            a, b = results[small], results[big]
            def paired(m, k, cpu=False):
                pairs = zip(a[m], b[m])
                if cpu:
                    return statistics.median((y[1] + y[2]) / (x[1] + x[2]) for x, y in pairs)
                return statistics.median(y[k] / x[k] for x, y in pairs)
            print(f"| {store} | {paired('me', 0):.2f} | {paired('by_id', 0):.2f} | "
                  f"{paired('login', 0):.2f} | {paired('me', 1, True):.2f} | "
                  f"{paired('by_id', 1, True):.2f} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        for server in list(RUNNING):
            server.stop()
        subprocess.run(["rm", "-rf", WORK])
