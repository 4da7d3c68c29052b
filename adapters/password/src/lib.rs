//! Portcullis password hashing: [`PhcPasswordHasher`], the adapter behind the
//! domain's [`PasswordHasher`](portcullis_domain::PasswordHasher) port.
//!
//! New hashes are argon2id (`$argon2id$v=19$m=19456,t=2,p=1$…`, the default)
//! or PBKDF2-SHA256 (`$pbkdf2-sha256$i=600000,l=32$…`) PHC strings with a
//! 16-byte random salt, as [`HasherConfig`] says. Any argon2 or PBKDF2 hash
//! verifies, among them those FastAPI Users writes through pwdlib
//! (`$argon2id$v=19$m=65536,t=3,p=4$…`) and passlib's `pbkdf2_sha256`, and
//! bcrypt hashes (`$2a$`, `$2b$`, `$2y$`, as pwdlib and passlib wrote them for
//! FastAPI Users; only the first 72 bytes of a secret count, as there); one
//! made another way than configured comes back re-hashed. Hashing runs on the
//! hasher's own threads (one per core, living as long as the hasher; the caller
//! awaits without blocking a thread), one job per thread at most, behind a
//! bounded queue (callers past it are refused as busy); an argon2 job started
//! while no other runs computes its lanes side by side on the threads, one
//! started while another runs computes them one after the other on a thread
//! of its own (the cores are taken anyway), and argon2 jobs reuse one
//! memory buffer per slot instead of allocating `m` KiB for every hash,
//! given back to the system once unused for a few seconds. Failed verifications are
//! padded to the slowest parameter set's time, so a login's duration does not
//! tell which addresses have accounts.
//!
//! This crate depends only on the domain port and the hashing crates
//! (`argon2`, `pbkdf2`, `password-hash`, `bcrypt`, `getrandom`), `tracing`, plus Tokio (its
//! semaphore and timer, and its blocking pool should the hashing threads fail to
//! start) and rayon for the hashing threads and argon2's lanes: never on a web framework, a store or a token library.
#![warn(missing_docs)]

mod block_pool;
mod blocking_limiter;
mod config;
mod cost_book;
mod lanes;
mod phc_password_hasher;
mod scheme;
mod stored_hash;
#[cfg(test)]
mod test_support;

/// `mutex`'s guard, also when a thread panicked while holding it: every
/// state this crate keeps behind a mutex (counts, lists, flags, samples) is
/// whole at each unlock, and a hasher must keep hashing after one job's panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use config::{
    Algorithm, ConfigError, HasherConfig, MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB,
    MAX_ARGON2_PARALLELISM, MAX_BCRYPT_COST, MAX_HASH_QUEUE, MAX_HASH_QUEUE_TIMEOUT,
    MAX_PBKDF2_ROUNDS, MIN_BCRYPT_COST, MIN_PBKDF2_ROUNDS,
};
pub use phc_password_hasher::PhcPasswordHasher;
