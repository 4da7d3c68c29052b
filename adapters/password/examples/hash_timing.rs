//! Times hashing at the default parameters, one hash at a time, through the
//! adapter (so the blocking-pool hand-off is included).
//!
//! ```text
//! cargo run --release -p portcullis-password --example hash_timing [N]
//! ```
//!
//! `N` (default 20) hashes per algorithm; prints milliseconds per hash.

use std::time::{Duration, Instant};

use portcullis_domain::{HashError, PasswordHasher};
use portcullis_password::{Algorithm, HasherConfig, PhcPasswordHasher};

/// What FastAPI Users (pwdlib) stores: argon2id m=65536, t=3, p=4.
const PWDLIB_ARGON2ID: &str = "$argon2id$v=19$m=65536,t=3,p=4$G4IAIla6mV4Az1oEhrDIvw$6bnG+8+ia0+tSuMqAYMaO5S6MJL/zo+dtxUkxmoRjJ0";
/// What pwdlib's `BcryptHasher()` stores (cost 12) for [`SECRET`].
const PWDLIB_BCRYPT: &str = "$2b$12$tJrT8td6ecJo0a8D8qj.UeO/hNUxZS0wZZ89I8RH.fgeLiBstf4Lm";
const SECRET: &str = "correct horse battery";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 20,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    runtime.block_on(async {
        for algorithm in [Algorithm::Argon2id, Algorithm::Pbkdf2Sha256] {
            let hasher = PhcPasswordHasher::new(HasherConfig {
                algorithm,
                ..HasherConfig::default()
            })?;
            let sample = hasher.hash(SECRET).await?;
            let params = sample.rsplitn(3, '$').nth(2).unwrap_or_default();
            let per_hash = time(rounds, || hasher.hash(SECRET)).await?;
            println!("{params:<40} hash    {:>7.1} ms", millis(per_hash));
        }
        // Configured like pwdlib, so the verification is not followed by a re-hash.
        let hasher = PhcPasswordHasher::new(HasherConfig {
            argon2_memory_kib: 65_536,
            argon2_iterations: 3,
            argon2_parallelism: 4,
            ..HasherConfig::default()
        })?;
        let per_verify = time(rounds, || hasher.verify_and_update(SECRET, PWDLIB_ARGON2ID)).await?;
        println!(
            "{:<40} verify  {:>7.1} ms",
            "$argon2id$v=19$m=65536,t=3,p=4 (pwdlib)",
            millis(per_verify)
        );
        // A wrong password: no re-hash, and padded to the slowest set met,
        // which is this one (the hasher has met no other).
        let hasher = PhcPasswordHasher::new(HasherConfig::default())?;
        let per_check = time(rounds, || hasher.verify_and_update("wrong", PWDLIB_BCRYPT)).await?;
        println!(
            "{:<40} verify  {:>7.1} ms (wrong password)",
            "$2b$12 (pwdlib bcrypt)",
            millis(per_check)
        );
        Ok(())
    })
}

/// Mean duration of `rounds` sequential runs of `job`, after one warm-up.
async fn time<T, F, Fut>(rounds: u32, job: F) -> Result<Duration, HashError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, HashError>>,
{
    job().await?;
    let start = Instant::now();
    for _ in 0..rounds.max(1) {
        job().await?;
    }
    Ok(start.elapsed() / rounds.max(1))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
