#!/usr/bin/env python3
"""Login throughput under a flood against what the hashing slots allow,
measured in interleaved rounds (bench/login_latency.sh runs it; issue 16).

This machine's speed drifts by tens of percent within seconds (a shared
host), so the reference and the flood are measured in turns:

    R0 F1 R1 F2 R2 ... Fn Rn

R is what the hashing slots allow: one bare argon2id computation pinned to
each CPU, all at once (they share the memory bus and the caches, as the
slots do), in hashes per second: the sum over CPUs of that CPU's rate,
its hashes over the time they took, hashing side by side for REFERENCE_MS
(1200) ms (argon2_time's ARGON2_TIME_FOR_MS), so that none hashes alone at
the end. A rate is the same kind of figure as the flood's; the sum of
1 / the median hash times, which leaves the host's slow moments out of
the reference only, is printed for comparison. F is a flood segment: LOGINS good logins, PARALLEL at a time
(threads, keep-alive connections), its steady rate taken between the
SLOTS-th completion and the SLOTS-th before last (the segment's ramp-up and
drain are left out). Each round's ratio is F_i / mean(R_{i-1}, R_i); the
figure is their median.

Each round also prints the server's CPU use over the steady part (its CPU
time between the same two completions, over their distance, per CPU): how
busy the server kept the cores while logins waited, which drifts with the
host far less than a rate does; below 1, cores were idle with work queued.

Rates on this host drift with it; CPU time much less. So each round also
prints the server's CPU time per login (with SERVER_PID set) against the
CPU time of one bare hash in the reference (its processes' CPU time over
their hashes, warm-up included): a figure near 1 says a login costs the
server one hash and nothing more, whatever the rates did.

Usage: login_flood.py BASE USERS PARALLEL LOGINS ROUNDS ARGON2_TIME M T P
(users bench1..benchUSERS@example.com, password "bench password N").
"""
import resource
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


REFERENCE_MS = os.environ.get("REFERENCE_MS", "1200")
server_pid = os.environ.get("SERVER_PID")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu():
    with open(f"/proc/{server_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slots_rate():
    cpu_before = children_cpu()
    procs = [
        subprocess.Popen(["taskset", "-c", str(cpu), argon2_time, "1", m, t, p],
                         stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, ARGON2_TIME_FOR_MS=REFERENCE_MS))
        for cpu in range(cpus)
    ]
    rate = median_rate = 0.0
    hashes = 0
    for proc in procs:
        out, _ = proc.communicate()
        rate += float(out.split("rate ")[1].split(" /s")[0])
        median_rate += 1000 / float(out.split("median ")[1].split(" ms")[0])
        hashes += int(out.split("(")[1].split(" hashes")[0]) + 1  # and the warm-up
    cpu_per_hash = (children_cpu() - cpu_before) / hashes
    return rate, median_rate, cpu_per_hash


def flood():
    done, lock, statuses = [], threading.Lock(), {}
    left = [logins]
    # The server's CPU time at the steady part's first and last completion.
    marks = {}

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
                if server_pid and len(done) in (cpus + 1, logins - cpus):
                    marks[len(done)] = (done[-1], server_cpu())
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.sort()
    lo, hi = cpus, len(done) - 1 - cpus
    busy = None
    if len(marks) == 2:
        (t0, c0), (t1, c1) = marks[cpus + 1], marks[logins - cpus]
        busy = (c1 - c0) / (t1 - t0) / cpus
    return (hi - lo) / (done[hi] - done[lo]), statuses, busy


refs = [slots_rate()]
ratios, by_median, cpu_ratios, busies, all_statuses = [], [], [], [], {}
for _ in range(rounds):
    cpu_before = server_cpu() if server_pid else 0.0
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    rate, statuses, busy = flood()
    cpu_per_login = (server_cpu() - cpu_before) / logins if server_pid else None
    own = resource.getrusage(resource.RUSAGE_SELF)
    client_per_login = (own.ru_utime + own.ru_stime - own_before.ru_utime
                        - own_before.ru_stime) / logins
    refs.append(slots_rate())
    for code, count in statuses.items():
        all_statuses[code] = all_statuses.get(code, 0) + count
    reference = (refs[-2][0] + refs[-1][0]) / 2
    ratios.append(rate / reference)
    by_median.append(rate / ((refs[-2][1] + refs[-1][1]) / 2))
    print(f"  round {len(ratios)}: flood {rate:.2f} logins/s, slots allow {reference:.2f}/s "
          f"(before {refs[-2][0]:.2f}, after {refs[-1][0]:.2f}): {rate / reference:.3f} "
          f"(against the median hash times: {by_median[-1]:.3f})")
    if cpu_per_login is not None:
        cpu_ratio = cpu_per_login / ((refs[-2][2] + refs[-1][2]) / 2)
        cpu_ratios.append(cpu_ratio)
        print(f"    server CPU per login {cpu_per_login * 1000:.1f} ms, per bare hash "
              f"{refs[-2][2] * 1000:.1f} / {refs[-1][2] * 1000:.1f} ms: {cpu_ratio:.3f}; "
              f"this client's CPU per login {client_per_login * 1000:.2f} ms")
    if busy is not None:
        busies.append(busy)
        print(f"    server CPU use in the steady part: {busy:.3f} of the {cpus} CPUs")
median = statistics.median(ratios)
print(f"login flood: {rounds} rounds of {logins} logins, {parallel} at a time, status "
      f"{dict(sorted(all_statuses.items()))}; flood / what the slots allow: median {median:.3f} "
      f"(rounds {', '.join(f'{r:.3f}' for r in ratios)}) (target >= 0.95); against the "
      f"median hash times: {statistics.median(by_median):.3f}")
if cpu_ratios:
    print(f"server CPU per login / CPU per bare hash: median {statistics.median(cpu_ratios):.3f} "
          f"(rounds {', '.join(f'{r:.3f}' for r in cpu_ratios)})")
if busies:
    print(f"server CPU use under the flood / CPUs: median {statistics.median(busies):.3f} "
          f"(rounds {', '.join(f'{r:.3f}' for r in busies)}): what the server leaves idle "
          f"while logins wait, whatever the host's speed")
sys.exit(0 if median >= 0.95 and set(all_statuses) == {200} else 1)
