#!/usr/bin/env python3
"""Login throughput under a flood against what the hashing slots allow,
measured in interleaved rounds (bench/login_latency.sh runs it; issue 16).

This machine's speed drifts by tens of percent within seconds (a shared
host), so the reference and the flood are measured in turns:

    R0 F1 R1 F2 R2 ... Fn Rn

R is what the hashing slots allow: one bare argon2id computation pinned to
each CPU, all at once (they share the memory bus and the caches, as the
slots do), in hashes per second (the sum over CPUs of 1 / that CPU's
median time). F is a flood segment: LOGINS good logins, PARALLEL at a time
(threads, keep-alive connections), its steady rate taken between the
SLOTS-th completion and the SLOTS-th before last (the segment's ramp-up and
drain are left out). Each round's ratio is F_i / mean(R_{i-1}, R_i); the
figure is their median.

Usage: login_flood.py BASE USERS PARALLEL LOGINS ROUNDS ARGON2_TIME M T P
(users bench1..benchUSERS@example.com, password "bench password N").
"""
import http.client
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import os

base, users, parallel, logins, rounds, argon2_time, m, t, p = sys.argv[1:]
users, parallel, logins, rounds = int(users), int(parallel), int(logins), int(rounds)
host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
cpus = len(os.sched_getaffinity(0))


def slots_rate():
    procs = [
        subprocess.Popen(["taskset", "-c", str(cpu), argon2_time, "7", m, t, p],
                         stdout=subprocess.PIPE, text=True)
        for cpu in range(cpus)
    ]
    rate = 0.0
    for proc in procs:
        out, _ = proc.communicate()
        rate += 1000 / float(out.split("median ")[1].split(" ms")[0])
    return rate


def flood():
    done, lock, statuses = [], threading.Lock(), {}
    left = [logins]

    def worker(k):
        conn = http.client.HTTPConnection(host, port, timeout=120)
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
                n = left[0]
            i = (n + k) % users + 1
            body = f"username=bench{i}%40example.com&password=bench%20password%20{i}"
            conn.request("POST", "/api/auth/jwt/login", body,
                         {"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            with lock:
                done.append(time.monotonic())
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.sort()
    lo, hi = cpus, len(done) - 1 - cpus
    return (hi - lo) / (done[hi] - done[lo]), statuses


refs = [slots_rate()]
ratios, rates, all_statuses = [], [], {}
for _ in range(rounds):
    rate, statuses = flood()
    refs.append(slots_rate())
    for code, count in statuses.items():
        all_statuses[code] = all_statuses.get(code, 0) + count
    reference = (refs[-2] + refs[-1]) / 2
    rates.append(rate)
    ratios.append(rate / reference)
    print(f"  round {len(ratios)}: flood {rate:.2f} logins/s, slots allow {reference:.2f}/s "
          f"(before {refs[-2]:.2f}, after {refs[-1]:.2f}): {rate / reference:.3f}")
median = statistics.median(ratios)
print(f"login flood: {rounds} rounds of {logins} logins, {parallel} at a time, status "
      f"{dict(sorted(all_statuses.items()))}; flood / what the slots allow: median {median:.3f} "
      f"(rounds {', '.join(f'{r:.3f}' for r in ratios)}) (target >= 0.95)")
sys.exit(0 if median >= 0.95 and set(all_statuses) == {200} else 1)
