//! How long the codec takes to issue and to check an access token, in
//! microseconds per call: the part of every authenticated request (`jwt`
//! strategy) that is this crate's. Run through `bench/token_codec.sh`
//! (release build): `token_codec_bench [ITERATIONS] [ROUNDS]`.
//!
//! Each figure is given twice: wall time, and the CPU time this thread
//! really ran (Linux's `/proc/thread-self/schedstat`), which a busy machine
//! disturbs far less (time spent waiting for a core is not counted).

use std::sync::Arc;
use std::time::Instant;

use portcullis_domain::{SystemClock, TokenCodec as _, UserId};
use portcullis_jwt_josekit::{JosekitTokenCodec, TokenSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args
        .next()
        .map_or(200_000, |a| a.parse().expect("ITERATIONS"));
    let rounds: u32 = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));
    let codec = JosekitTokenCodec::new(
        TokenSettings::new(
            "bench-access-secret-0123456789abcdef-0123456789",
            "bench-reset-secret-0123456789abcdef-01234567890",
            "bench-verify-secret-0123456789abcdef-0123456789",
        ),
        Arc::new(SystemClock),
    )
    .expect("valid settings");
    let user = UserId::random();
    let token = codec.issue_access(user, 1_764_000_000_000).expect("issued");
    let per_call = |total_ns: f64| total_ns / 1e3 / f64::from(iterations);
    for round in 1..=rounds {
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        for _ in 0..iterations {
            std::hint::black_box(
                codec
                    .verify_access(std::hint::black_box(&token))
                    .expect("valid"),
            );
        }
        let verify_us = per_call(start.elapsed().as_secs_f64() * 1e9);
        let verify_cpu = cpu
            .zip(thread_cpu_ns())
            .map(|(a, b)| per_call((b - a) as f64));
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        for _ in 0..iterations {
            std::hint::black_box(
                codec
                    .issue_access(std::hint::black_box(user), 1)
                    .expect("issued"),
            );
        }
        let issue_us = per_call(start.elapsed().as_secs_f64() * 1e9);
        let issue_cpu = cpu
            .zip(thread_cpu_ns())
            .map(|(a, b)| per_call((b - a) as f64));
        let cpu = |us: Option<f64>| us.map_or_else(|| "?".to_owned(), |us| format!("{us:.3}"));
        println!(
            "round {round}: verify_access {verify_us:.3} us/call (CPU {}), issue_access {issue_us:.3} us/call (CPU {})",
            cpu(verify_cpu),
            cpu(issue_cpu)
        );
    }
}

/// Nanoseconds this thread has run on a CPU, if the kernel says
/// (`/proc/thread-self/schedstat`'s first field; Linux only).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
