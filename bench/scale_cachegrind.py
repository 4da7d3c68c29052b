#!/usr/bin/env python3
"""Issue 16, scale: what one `GET /users/me` costs in instructions and in
cache misses with 1 000 and with 1 000 000 users in SQLite, counted by
valgrind's cachegrind (a simulated cache: the same figures on a busy host as
on an idle one, which wrk's req/s on this shared VM are not).

The databases are bench/scale.py's (bulk-loaded the same way; `me` for a
random user of a 20,000-user sample, or of all 999 at 1k). For each binary
and size the server runs twice under cachegrind, one request at a time on
one keep-alive connection: once for one pass over the sample (each user
once, shuffled: the first read of each) and once for that pass and a second
one (another order). The second run's counts less the first's are one
steady pass, start-up and first reads excluded; divided by its requests,
per request:
- Ir: instructions;
- D1 miss: data reads and writes missing the simulated L1 (64 KiB, as this
  machine's);
- LL miss: instruction and data accesses missing the simulated last level
  (CG_LL, cachegrind's "size,ways,line": by default 32 MiB, 16-way, as this
  VM's L3, here all the process' own: the host's other tenants, who share
  the real one, are what this leaves out).
cachegrind simulates no TLB: a page walk of the mapped file is not counted.

Usage: CG_BINS="<binary> [<binary> …]" python3 bench/scale_cachegrind.py
Environment: CG_SIZES ("1000 1000000"), CG_LL ("33554432,16,64"),
CG_KEEP (set: the databases and cachegrind's files are kept, for
cg_annotate, and their folder printed), SCALE_PORT_BASE (9400). Needs
valgrind and python3.
"""
import http.client
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BINS = os.environ["CG_BINS"].split()
os.environ.setdefault("PORTCULLIS_BIN", BINS[0])
sys.path.insert(0, HERE)
import scale  # noqa: E402

SIZES = [int(n) for n in os.environ.get("CG_SIZES", "1000 1000000").split()]
LL = os.environ.get("CG_LL", "33554432,16,64")
EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")


def counts(binary, db, passes, tag):
    """Cachegrind's totals for a server that answered `passes` shuffled
    passes of `me` over the sample of `db`."""
    out = os.path.join(scale.WORK, f"cachegrind-{tag}-{db.n}-{passes}.out")
    port = next(scale.ports)
    proc = subprocess.Popen(
        ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--LL={LL}",
         "--D1=65536,8,64", "--I1=65536,8,64", f"--cachegrind-out-file={out}",
         binary, "serve"],
        env=scale.env_for(db.url, port), stdout=db.log, stderr=db.log,
    )
    start = time.perf_counter()
    while not scale.health(port):
        if proc.poll() is not None or time.perf_counter() - start > 300:
            proc.kill()
            sys.exit(f"the server under valgrind did not start: see {db.log.name}")
        time.sleep(0.2)
    tokens = [scale.access_token(i) for i, _ in db.ids]
    rng = random.Random(db.n)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(passes):
        rng.shuffle(tokens)
        for token in tokens:
            conn.request("GET", "/api/users/me", headers={"authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                sys.exit(f"me answered {response.status}: {body[:200]!r}")
    conn.close()
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=300) != 0:
        sys.exit(f"the server under valgrind exited {proc.returncode}: see {db.log.name}")
    with open(out) as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
            if line.startswith("summary:"):
                values = dict(zip(names, map(int, line.split()[1:])))
                return [values.get(e, 0) for e in EVENTS], len(tokens)
    sys.exit(f"no summary in {out}")


def main():
    dbs = {n: scale.Database("sqlite", n) for n in SIZES}
    rows = []
    for b, binary in enumerate(BINS):
        for n, db in dbs.items():
            one, requests = counts(binary, db, 1, b)
            two, _ = counts(binary, db, 2, b)
            d = dict(zip(EVENTS, (y - x for x, y in zip(one, two))))
            per = {
                "Ir": d["Ir"] / requests,
                "D1 miss": (d["D1mr"] + d["D1mw"]) / requests,
                "LL miss": (d["ILmr"] + d["DLmr"] + d["DLmw"]) / requests,
            }
            rows.append((os.path.basename(binary), n, requests, per))
            print(f"{binary} {n}: {requests} requests a pass, per request "
                  + ", ".join(f"{k} {v:.1f}" for k, v in per.items()), flush=True)
    print(f"\nper `me` request, one steady pass (LL = {LL})")
    print("| binary | users | requests | Ir | D1 miss | LL miss |")
    print("|---|---|---|---|---|---|")
    for name, n, requests, per in rows:
        print(f"| {name} | {n:,} | {requests:,} | {per['Ir']:,.0f} | "
              f"{per['D1 miss']:.1f} | {per['LL miss']:.2f} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        if os.environ.get("CG_KEEP"):
            print(f"kept: {scale.WORK}")
        else:
            subprocess.run(["rm", "-rf", scale.WORK])
