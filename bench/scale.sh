#!/usr/bin/env bash
# Issue 16, scale: `me`, `by_id` and login throughput, start-up, `migrate`,
# register and the database size with 1 000 and with 1 000 000 users, on
# SQLite and on PostgreSQL (a throwaway cluster, scripts/with-postgres).
# The users are bulk-loaded outside Portcullis (sqlite3 / COPY), as rows
# exactly as Portcullis writes them, sharing the first superuser's hash;
# bench/scale.py says how each figure is taken. The goal: the 1M figures
# within 10% of the 1k ones (ratios >= 0.90), start-up under 1 s, register
# one hash time plus milliseconds (compare "register ms" with "login@1 ms",
# one hash and the store's look-ups).
#
# Issue 16, measured 2026-12-02 on the 2-core machine while five other
# sessions built and benchmarked (load average 13-27): `SCALE_ROUNDS=2
# SCALE_SECONDS=5 bench/scale.sh`, PORTCULLIS_BIN = the release build
# before (3d2799b) and after (ix_portcullis_accesstoken_user_id); medians
# of 2 rounds; CPU = server + PostgreSQL per request, in us.
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  before sqlite 1k   7208/119     5238/167       68     18    36    64.6  72.1     81.3     0.5
#  before sqlite 1M   7340/120     3648/215       50     64    41    58.4  67.9     729.2    496.3
#  before pg 1k       3777/191     2926/298       86     177   101   81.1  45.3     66.3     8.3
#  before pg 1M       3317/215     2398/331       68     151   27    44.7  55.4     275.8    548.7
#  after sqlite 1k    5158/107     4125/186       52     12    7     6.6   6.7      1.3      0.6
#  after sqlite 1M    3963/138     3716/173       38     93    34    46.3  37.8     4.7      544.6
#  after pg 1k        6501/142     3958/305       141    142   40    27.9  32.0     15.7     8.4
#  after pg 1M        7098/158     3420/330       136    124   31    17.1  32.0     15.9     587.8
# (1M sizes: users + one accesstoken row each; the index adds 48 MiB on
# SQLite, 39 MiB on PostgreSQL.) Sign-out everywhere with a million
# sessions: 729 -> 4.7 ms (SQLite), 276 -> 15.9 ms (PostgreSQL): the
# DELETE … WHERE user_id read the whole accesstoken table. Start-up
# (exec to the first 200 on /health) stays 12-177 ms, `migrate` 7-101 ms,
# at either size: nothing at start scans `user`. The req/s of one round
# moved by +-30% with the machine's load (the same binary's SQLite `me`
# ratio was 1.02 in one run, 0.77 in the other), so the 10% goal is judged
# on CPU and on the store's own cost: one random primary-key row read in
# SQLite (Python sqlite3, 20 000 random ids, 100 000 reads) costs 7.6 us at
# 1k users and 16.1 us at 1M (a deeper B-tree, pages from the OS cache
# through the 2 MiB page cache), i.e. ~+8 us on a request of 100-200 us
# (4-8%); with PRAGMA mmap_size=1GiB +4.5 us, cache_size 64 MiB +8 us —
# not applied: mapped pages count in the resident memory issue 16 bounds.
#
# Measured again on the idle machine after the read-path work (requests now
# cost 30-50 us of CPU, so a cold page weighs more): `SCALE_ROUNDS=3
# SCALE_SECONDS=6 bench/scale.sh`, medians of 3 rounds:
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  now sqlite 1k      42609/32     38629/38       458    19    8     4.8   4.7      0.9      0.6
#  now sqlite 1M      40566/34     29435/50       448    18    9     4.8   4.8      1.1      544.5
#  now pg 1k          28821/52     26626/58       351    23    11    5.6   5.4      2.3      8.4
#  now pg 1M          28910/49     29243/51       378    30    14    6.6   6.0      3.0      587.4
# Ratios 1M / 1k: SQLite me 0.95, by_id 0.76, login 0.98; PostgreSQL 1.00,
# 1.10, 1.08. SQLite's by_id is short of 0.90: one random row at 1M reads
# two cold B-tree leaves (the id's autoindex, then the table) from the OS
# cache, +5 to +8 us (Python sqlite3 on a 1M table: 6-8 us for a hot row,
# 12-20 us for a random one), on a request of ~38 us. An experiment with
# PRAGMA mmap_size=1GiB on the inline read connections gave me 0.99, by_id
# 0.85, login 0.90: better, still short, and not adopted (an I/O error on a
# mapped file is a SIGBUS, not an error; mapped pages count as resident).
#
# Then (2026-12-02, idle machine) the inline readers map the file
# (SqliteStoreOptions::read_mmap_size, 1 GiB): a page is no longer a pread
# and a copy into the connection's 2 MiB page cache. `SCALE_ROUNDS=6
# SCALE_SECONDS=5 bench/scale.sh`, medians of 6 rounds:
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  mmap sqlite 1k     55792/24     46651/31       478    16    7     5.4   5.2      1.2      0.6
#  mmap sqlite 1M     44573/30     37748/38       463    18    10    5.2   4.9      1.1      544.5
#  mmap pg 1k         28421/53     21446/72       426    23    14    4.5   4.2      1.9      8.4
#  mmap pg 1M         31558/46     24581/61       429    25    12    6.4   5.2      2.6      587.1
# Ratios 1M / 1k (medians; medians of the 6 paired rounds): SQLite me
# 0.80 (0.84), by_id 0.81 (0.83), login 0.97 (1.01); PostgreSQL 1.11 (1.16),
# 1.15 (1.17), 1.01 (1.01). A SQLite-only run just before (`… bench/scale.sh
# "1000 1000000" sqlite`): me 0.85 (0.87), by_id 0.89 (0.88), login 0.99;
# one just after, `SCALE_ROUNDS=8 SCALE_SECONDS=4 … sqlite`: me 0.89
# (0.87), by_id 0.95 (0.90), login 1.00 (30 -> 34 us, 40 -> 41 us).
# The map made both sizes cheaper (by_id at 1k: 38 -> 31 us), so the
# penalty of a random row at 1M, now +4 to +7 us, weighs as much as before.
# Profiled (perf, me at 1M against 1k, both mapped), it is all in SQLite's
# own B-tree search (sqlite3BtreeIndexMoveto, sqlite3BtreeTableMoveto,
# record compares): no system call is left, only loads from memory that
# is not in the CPU's caches (the 1k database, 0.6 MiB, is; a random row
# of 1M reads one leaf of the id index and one of the table: by our
# estimate 20 to 40 cache lines from main memory). Without a cache of
# rows (which the goal forbids), SQLite's two B-trees are what a lookup
# costs.
#
# Then (2026-12-02) each thread's reader remembers where the rows it read
# lie (RowidHints: id -> rowid, 65,536 ids, checked at each read with
# WHERE rowid = ? AND id = ?) and skips the id's index for a known id. In C
# against the system libsqlite3 (random reads of the 20,000-user sample,
# the file mapped): by id 4.4 us at 1k, 8.4 us at 1M; by rowid and id
# 5.2-5.7 us at 1M. `PORTCULLIS_BIN=<head> SCALE_ROUNDS=8 SCALE_SECONDS=4
# bench/scale.sh`, medians of 8 rounds (this host ran ~30% slower per
# request than in the runs above):
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  hints sqlite 1k    40972/33     41348/35       410    18    11    4.4   4.3      0.8      0.6
#  hints sqlite 1M    37037/35     37460/38       395    17    10    5.8   5.7      1.1      544.5
#  hints pg 1k        28894/52     20741/76       367    22    10    6.8   6.3      2.7      8.4
#  hints pg 1M        32093/45     23084/66       364    22    10    6.7   6.0      2.7      586.0
# Ratios 1M / 1k (medians; paired): SQLite me 0.90 (0.92), by_id 0.91
# (0.97), login 0.96 (0.97); PostgreSQL 1.11 (1.10), 1.11 (1.08), 0.99
# (1.02). SQLite-only runs of the same code: `SCALE_ROUNDS=6
# SCALE_SECONDS=5`: me 0.96 (0.87), by_id 0.87 (0.89); `SCALE_ROUNDS=12
# SCALE_SECONDS=3`: me 0.92 (0.95), by_id 0.90 (0.93), where the binary
# before gave me 0.87 (0.85), by_id 0.95 (0.92). bench/scale_ab.py runs
# both binaries side by side (paired rounds): with hints, at 1M, me +7% and
# +3% req/s, by_id +9% and +7% over the binary before.
#
# Then (2026-12-02) a login's lookup by an ASCII address runs on the
# request thread's reader too, and its hash on the hashing threads without
# a blocking-pool thread waiting for it. Same command, idle machine (this
# host ~10% slower per request than the run above at 1k, faster at 1M):
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  sqlite 1k          46140/29     32331/45       367    15    8     5.7   5.8      1.0      0.6
#  sqlite 1M          41885/31     29958/48       371    16    9     6.3   6.1      1.4      544.7
#  pg 1k              25838/58     18367/85       426    31    14    6.8   6.0      3.0      8.4
#  pg 1M              28062/52     20660/74       410    30    14    7.6   6.7      3.5      586.8
# Ratios 1M / 1k (medians; paired): SQLite me 0.91 (0.94), by_id 0.93
# (0.94), login 1.01 (1.01); PostgreSQL 1.09 (1.07), 1.12 (1.15), 0.96
# (1.00). SQLite only, `SCALE_ROUNDS=12 SCALE_SECONDS=3 … sqlite`: me 0.92
# (0.91), by_id 0.89 (0.91), login 1.00 (1.01).
#
# 2026-12-03 (the PostgreSQL token on the read lane, solo hashing threads;
# the `me` / `by_id` paths unchanged), same command, a host ~40% faster per
# request:
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  sqlite 1k          65875/17     48855/25       706    16    7     2.8   2.8      0.7      0.6
#  sqlite 1M          58212/19     44896/27       700    14    9     3.9   3.5      1.6      544.6
#  pg 1k              52710/25     35054/40       681    21    10    3.5   3.1      1.9      8.4
#  pg 1M              50268/26     37260/36       659    25    10    3.6   3.2      2.1      587.2
# Ratios 1M / 1k (medians; paired): SQLite me 0.88 (0.91), by_id 0.92
# (0.93), login 0.99 (1.00); PostgreSQL 0.95 (0.97), 1.06 (1.04), 0.97
# (0.96). SQLite's `me` costs 17 us at 1k now: the same +2 us of B-tree
# misses at 1M weighs more than it did at 29 us.
#
# 2026-12-04 (commit b51ed5b; the `me` / `by_id` paths unchanged since),
# `PORTCULLIS_BIN=<b51ed5b> SCALE_ROUNDS=8 SCALE_SECONDS=4 bench/scale.sh`
# as part of bench/issue16.sh:
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  sqlite 1k          66786/17     41095/30       588    16    9     3.8   4.1      1.2      0.6
#  sqlite 1M          55378/20     41355/29       533    17    10    5.3   5.1      2.2      544.6
#  pg 1k              49709/26     35423/39       645    28    10    3.8   3.4      2.2      8.4
#  pg 1M              49404/26     37134/36       625    22    13    4.2   3.7      2.3      588.2
# Ratios 1M / 1k (medians; paired): SQLite me 0.83 (0.86), by_id 1.01
# (1.00), login 0.91 (0.92); PostgreSQL 0.99 (0.96), 1.05 (1.03), 0.97
# (1.01). The same binary's SQLite `me` on the same host, 1k and 1M side by
# side as here, 6 rounds of 4 s: 0.99 (paired 0.99) half an hour before
# (CPU per request 17-19 us at both sizes), 0.89 (0.90) twenty minutes
# after (1k itself moving 48-73k req/s). A random row at 1M is cheap when
# its B-tree lines stay in the 32 MiB L3 this VM shares with its host's
# other tenants, +3 to +5 us when they do not: the ratio follows the
# neighbours more than the code.
#
# 2026-12-04, later (commit a4935b5: one table of rowid hints per store,
# 512 KiB, shared by the threads, instead of 1.5 MiB per thread). The host
# was ~2x slower per request than the run above (me 28-35 us at 1k).
# bench/scale_ab.py, 16 paired rounds of 3 s, the binary before (6802723)
# and this one side by side: me at 1M 1.016 of the binary before's req/s,
# at 1k 1.008 (an 8-round run had said 0.909 and 1.037: the noise of
# this host). What req/s cannot settle here, bench/scale_cachegrind.py
# counts (cachegrind's simulated caches; one steady pass of me over the
# sample, per request):
#                     LL 32 MiB (this VM's L3, unshared)    LL 4 MiB (an L3 mostly taken by others)
#                     Ir      D1 miss  LL miss              Ir      D1 miss  LL miss
#  6802723 1k         93,431  907      0.1                  93,430  948      ~0
#  6802723 1M         94,677  960      2.2                  94,573  970      8.8
#  a4935b5 1k         93,811  899      0.3                  92,845  963      ~0
#  a4935b5 1M         94,513  931      1.9                  94,469  988      7.2
# (D1 and the 1k LL counts move by a few per cent from run to run: the
# server's threads interleave differently.) So at a million users a `me`
# runs 0.7-1.7% more instructions (one more B-tree level) and, with the
# cache to itself, misses the last level ~2 more times: ~0.2-0.3 us on a
# 17-30 us request, a ratio of ~0.98 if nothing else took the cache. With
# 4 MiB left to it, 7-9 misses: ~1 us. Under that, a page walk (the 544 MiB
# file is mapped in 4 KiB pages; cachegrind simulates no TLB), and the
# wrk runs above that put SQLite's me at 0.83-0.99 on the same code: the
# rest of the cost is the host's, not in the code's reach. What the shared
# table saves is memory: the server's anonymous memory after 6 s of wrk me
# over 20,000 of the 1M users, two runs each: 9.9-10.0 MB before, 7.3-7.4
# MB now (each thread's table was touched at 20,000 lines; one per store is
# 512 KiB however many threads read).
#
# 2026-12-04, afternoon (commit 4ba2427: a thread's SQLite lookups by id
# and of tokens in batches, one read transaction each), `PORTCULLIS_BIN=
# <4ba2427> SCALE_ROUNDS=8 SCALE_SECONDS=4 bench/scale.sh` in
# bench/issue16.sh:
#                    me rps/CPU   by_id rps/CPU  login  start  migr  reg   login@1 sign-out DB MiB
#  sqlite 1k          50651/24     44526/29       484    14    7     5.5   5.3      1.5      0.6
#  sqlite 1M          46315/26     40673/32       498    17    11    5.5   7.7      2.4      544.5
#  pg 1k              33712/40     23402/62       500    27    12    5.1   4.5      2.2      8.4
#  pg 1M              33972/39     24714/58       476    26    11    4.0   4.3      2.4      587.2
# Ratios 1M / 1k (medians; paired): SQLite me 0.91 (0.92), by_id 0.91
# (0.96), login 1.03 (1.01); PostgreSQL 1.01 (1.02), 1.06 (1.06), 0.95
# (0.99). The same code that morning: in a bench/issue16.sh run (whose
# PostgreSQL part stopped, its server gone at start; not seen again) SQLite
# me 0.89, by_id 0.91, login 0.97 (medians of 8 rounds); SQLite alone just
# before, me 0.91 (0.91), by_id 0.95, login 1.00 (0.98).
#
# Usage: bench/scale.sh [SIZES="1000 1000000"] [STORES="sqlite postgres"]
# Environment: SCALE_ROUNDS (3), SCALE_SECONDS (8, per wrk round),
# SCALE_PORT_BASE (9400: the servers take ports from here on),
# PORTCULLIS_BIN (a release binary built with the postgres feature; by
# default this one is built).
# Needs wrk, python3, psql and PostgreSQL's initdb/pg_ctl (for postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
export SCALE_SIZES=${1:-"1000 1000000"}
export SCALE_STORES=${2:-"sqlite postgres"}

if [ -z "${PORTCULLIS_BIN:-}" ]; then
  cargo build --release -p portcullis --features postgres --quiet
  export PORTCULLIS_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/portcullis"
fi
case " $SCALE_STORES " in
  *" postgres "*) exec scripts/with-postgres python3 bench/scale.py ;;
  *) exec python3 bench/scale.py ;;
esac
