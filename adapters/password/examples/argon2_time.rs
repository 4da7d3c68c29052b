//! Times the bare argon2id computation (no adapter, no slot, no HTTP): the
//! median of `N` hashes in one reused block buffer, on whatever CPUs the
//! process may use. Run it pinned to one CPU (`taskset -c 0 …`) for the
//! single-thread hash time the login benchmarks compare against
//! (`bench/login_latency.sh`).
//!
//! ```text
//! taskset -c 0 cargo run --release -p portcullis-password --example argon2_time [N] [M_KIB] [T] [P]
//! ```
//!
//! Defaults: 15 hashes at FastAPI Users' (pwdlib's) m=65536, t=3, p=4.
//!
//! With `ARGON2_TIME_FOR_MS=D` in the environment, it hashes (after the
//! warm-up) until `D` ms have passed rather than `N` times, and also prints
//! `rate … /s`: the hashes done over the time the last one ended. Processes
//! started together then hash side by side for the whole stretch, none of
//! them alone at the end (which, sharing the memory bus with none, would be
//! faster than any hash of a flood).
//! Prints one line: `argon2id m=… t=… p=…: median … ms, mean … ms, min … ms`.
//! The median suits a comparison with a median (a login's p50); the mean
//! (all the hashes' time over their count) with a rate over a stretch of
//! time (a flood's logins per second), slow moments included.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn arg(n: usize, default: u32) -> Result<u32, Box<dyn std::error::Error>> {
    Ok(match std::env::args().nth(n) {
        Some(value) => value.parse()?,
        None => default,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds = arg(1, 15)?.max(1);
    let (m, t, p) = (arg(2, 65_536)?, arg(3, 3)?, arg(4, 4)?);
    let params = Params::new(m, t, p, Some(32)).map_err(|e| format!("parameters: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut memory = vec![Block::new(); argon2.params().block_count()];
    let mut out = [0u8; 32];
    // Warm-up: the buffer's pages are touched once, as a pooled buffer's are.
    argon2
        .hash_password_into_with_memory(b"warm-up", b"saltsaltsaltsalt", &mut out, &mut memory)
        .map_err(|e| format!("hash: {e}"))?;
    let stretch = match std::env::var("ARGON2_TIME_FOR_MS") {
        Ok(ms) => Some(Duration::from_millis(ms.parse()?)),
        Err(_) => None,
    };
    let began = Instant::now();
    let mut times: Vec<Duration> = Vec::new();
    for i in 0.. {
        let done = match stretch {
            Some(stretch) => began.elapsed() >= stretch && !times.is_empty(),
            None => i >= rounds,
        };
        if done {
            break;
        }
        let start = Instant::now();
        argon2
            .hash_password_into_with_memory(
                format!("password {i}").as_bytes(),
                b"saltsaltsaltsalt",
                &mut out,
                &mut memory,
            )
            .map_err(|e| format!("hash: {e}"))?;
        times.push(start.elapsed());
    }
    let rounds = times.len();
    let rate = rounds as f64 / began.elapsed().as_secs_f64();
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "argon2id m={m} t={t} p={p}: median {:.1} ms, mean {:.1} ms, min {:.1} ms, \
         rate {rate:.3} /s ({rounds} hashes)",
        ms(times[times.len() / 2]),
        ms(times.iter().sum::<Duration>()) / times.len() as f64,
        ms(times[0])
    );
    Ok(())
}
