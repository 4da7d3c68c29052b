//! How long the codec takes to issue and to check an access token, in
//! microseconds per call: the part of every authenticated request (`jwt`
//! strategy) that is this crate's. Run through `bench/token_codec.sh`
//! (release build): `token_codec_bench [ITERATIONS] [ROUNDS]`.

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
    for round in 1..=rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(
                codec
                    .verify_access(std::hint::black_box(&token))
                    .expect("valid"),
            );
        }
        let verify_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(
                codec
                    .issue_access(std::hint::black_box(user), 1)
                    .expect("issued"),
            );
        }
        let issue_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!(
            "round {round}: verify_access {verify_us:.3} us/call, issue_access {issue_us:.3} us/call"
        );
    }
}
