#!/usr/bin/env bash
# The token codec alone (adapters/jwt-josekit), release build: microseconds
# per `verify_access` (what every authenticated `jwt` request costs in the
# codec) and per `issue_access`, ROUNDS rounds of ITERATIONS calls each, one
# core, no HTTP.
#
#   bench/token_codec.sh [ITERATIONS] [ROUNDS]     (defaults 200000, 5)
#
# CI flake fix (HS256 in pure Rust, `hmac` + `sha2`, instead of josekit's
# OpenSSL HMAC), measured 2026-12-02 on the 2-core machine under heavy load
# (load average ~30: other helpers' builds), the example binary built at the
# commit before (josekit's `HmacJwsSigner`, OpenSSL 3.0.19) and at the fix,
# runs alternating:
#   CPU time of 100000 verify_access + 100000 issue_access, `nice -n 19`,
#   3 runs each (/usr/bin/time user+sys):
#     OpenSSL HMAC: 2.00, 2.29, 1.75 s -> ~20 us of CPU per verify+issue pair
#     pure Rust:    0.60, 0.63, 0.45 s -> ~5.6 us             (3.6x less CPU)
#   wall time per call at normal priority, 3 runs each (noisy under load):
#     OpenSSL HMAC: verify_access 36.5, 42.9, 54.3 us; issue_access 32.4, 42.8, 47.9 us
#     pure Rust:    verify_access 12.7, 20.1, 17.8 us; issue_access  7.9,  8.1,  9.8 us
# On an idle machine expect far lower figures; compare before and after in
# alternating runs, as here.
#
# Own decoder for verify_access (issue 16: split, strict base64url, constant-
# time MAC first, serde_json straight into typed header/claims) instead of
# josekit's jwt::decode_with_verifier, measured 2026-12-02 on the shared
# 2-core machine (load average 2.3-2.9), normal priority, the example built
# at the commit before (6b1dfba's src, this example) and at the change,
# runs alternating, `token_codec_bench 200000 5` three times each; per run
# the median of its 5 rounds, then the median of the 3 runs (CPU = the
# thread's own CPU time, /proc/thread-self/schedstat):
#   verify_access CPU:  josekit decode 3.66 us (runs 3.66, 4.22, 2.70; best round 2.43)
#                       own decoder    1.34 us (runs 1.32, 1.50, 1.34; best round 1.20)
#   verify_access wall: 3.75 -> 1.67 us;  issue_access CPU (unchanged code): 2.04 -> 1.66 us
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p portcullis-jwt-josekit --example token_codec_bench -- "${1:-200000}" "${2:-5}"
