#!/usr/bin/env python3
"""Issue 16, scale: two release binaries side by side on the same SQLite
databases of 1 000 and 1 000 000 users (bench/scale.py's, bulk-loaded the
same way), `me` and `by_id` under wrk -c64.

This host's speed drifts by 15-30% within minutes, so a figure of one binary
taken in one run and one of another taken in the next say little. Here the
four servers (each binary on each size) run at once, idle but for the one
being measured, and each round measures all four in a shuffled order: each
printed ratio is the median of the rounds' own ratios.

Usage: AB_BASE_BIN=<before> AB_NEW_BIN=<after> python3 bench/scale_ab.py
Environment: AB_ROUNDS (8), AB_SECONDS (3, per wrk round), AB_MODES
("me by_id"), SCALE_PORT_BASE (9400). Needs wrk and python3.
"""
import os
import random
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BINS = {"base": os.environ["AB_BASE_BIN"], "new": os.environ["AB_NEW_BIN"]}
os.environ.setdefault("PORTCULLIS_BIN", BINS["base"])
sys.path.insert(0, HERE)
import scale  # noqa: E402

ROUNDS = int(os.environ.get("AB_ROUNDS", "8"))
SECONDS = int(os.environ.get("AB_SECONDS", "3"))
MODES = os.environ.get("AB_MODES", "me by_id").split()
SIZES = (1000, 1_000_000)


def paired(a, b, k):
    """Median over the rounds of b's figure over a's (k: 0 rps, 1 CPU)."""
    return statistics.median(y[k] / x[k] for x, y in zip(a, b))


def main():
    dbs = {n: scale.Database("sqlite", n) for n in SIZES}
    servers = {}
    for name, path in BINS.items():
        for n, db in dbs.items():
            scale.BIN = path
            servers[(name, n)] = scale.Server(db.url, next(scale.ports), db.log)
    items = {
        n: {"me": [scale.access_token(i) for i, _ in db.ids], "by_id": [i for i, _ in db.ids]}
        for n, db in dbs.items()
    }
    admin = {n: scale.access_token(db.admin_id) for n, db in dbs.items()}
    for mode in MODES:  # warm-up
        for (_, n), s in servers.items():
            scale.wrk(s.port, mode, items[n][mode], admin[n], 64, 2)
    res = {}
    for rnd in range(ROUNDS):
        for mode in MODES:
            keys = list(servers)
            random.shuffle(keys)
            for name, n in keys:
                s = servers[(name, n)]
                t0 = s.cpu_ticks()
                rps, done = scale.wrk(s.port, mode, items[n][mode], admin[n], 64, SECONDS)
                cpu = (s.cpu_ticks() - t0) / os.sysconf("SC_CLK_TCK") * 1e6 / done
                res.setdefault((mode, name, n), []).append((rps, cpu))
                print(f"round {rnd + 1} {mode} {name} {n}: {rps:.0f} req/s, {cpu:.1f} us/req",
                      file=sys.stderr, flush=True)
    print(f"\nmedians of {ROUNDS} rounds of {SECONDS} s; CPU = the server's, per request")
    print("| mode | binary | 1k rps | 1k CPU us | 1M rps | 1M CPU us | 1M/1k rps | paired | 1M/1k CPU paired |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in MODES:
        for name in BINS:
            a, m = res[(mode, name, SIZES[0])], res[(mode, name, SIZES[1])]
            ra, rm = (statistics.median(x[0] for x in v) for v in (a, m))
            ca, cm = (statistics.median(x[1] for x in v) for v in (a, m))
            print(f"| {mode} | {name} | {ra:.0f} | {ca:.1f} | {rm:.0f} | {cm:.1f} | "
                  f"{rm / ra:.3f} | {paired(a, m, 0):.3f} | {paired(a, m, 1):.3f} |")
    print("\nnew / base, paired")
    print("| mode | users | rps | CPU |")
    print("|---|---|---|---|")
    for mode in MODES:
        for n in SIZES:
            a, b = res[(mode, "base", n)], res[(mode, "new", n)]
            print(f"| {mode} | {n:,} | {paired(a, b, 0):.3f} | {paired(a, b, 1):.3f} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        for server in list(scale.RUNNING):
            server.stop()
        scale.subprocess.run(["rm", "-rf", scale.WORK])
