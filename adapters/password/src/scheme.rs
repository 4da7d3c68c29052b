//! The synchronous, CPU-heavy work: hashing a secret with the configured
//! scheme, and checking a secret against a stored hash, re-hashing it when the
//! stored hash is not what the configuration would make today.

use argon2::Argon2;
use password_hash::{PasswordHasher as _, phc::PasswordHash};
use pbkdf2::Pbkdf2;

use portcullis_domain::{HashError, Verification};

use crate::config::{Algorithm, ConfigError, HasherConfig};
use crate::stored_hash::StoredHash;

/// Salt length of new hashes, in bytes (the PHC format's recommendation).
const SALT_BYTES: usize = 16;
/// Output length of new hashes, in bytes.
const OUTPUT_BYTES: usize = 32;

/// A validated configuration turned into the crates' parameter types.
#[derive(Debug, Clone)]
pub(crate) struct Scheme {
    algorithm: Algorithm,
    argon2: argon2::Params,
    pbkdf2: pbkdf2::Params,
}

impl Scheme {
    pub(crate) fn new(config: &HasherConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        // `validate` enforces the crates' own limits, so these cannot fail;
        // should a crate grow stricter, report it against the right setting.
        let argon2 = argon2::Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            Some(OUTPUT_BYTES),
        )
        .map_err(|_| ConfigError::Argon2Memory {
            value: config.argon2_memory_kib,
            min: 8 * config.argon2_parallelism,
            max: crate::config::MAX_ARGON2_MEMORY_KIB,
            parallelism: config.argon2_parallelism,
        })?;
        let pbkdf2 = pbkdf2::Params::new_with_output_len(config.pbkdf2_rounds, OUTPUT_BYTES)
            .map_err(|_| ConfigError::Pbkdf2Rounds {
                value: config.pbkdf2_rounds,
                min: crate::config::MIN_PBKDF2_ROUNDS,
                max: crate::config::MAX_PBKDF2_ROUNDS,
            })?;
        Ok(Self {
            algorithm: config.algorithm,
            argon2,
            pbkdf2,
        })
    }

    /// A PHC string of `secret` with the configured algorithm and a fresh
    /// random salt.
    pub(crate) fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt)
            .map_err(|error| HashError(format!("no randomness for a salt: {error}")))?;
        let hash: password_hash::Result<PasswordHash> = match self.algorithm {
            Algorithm::Argon2id => Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                self.argon2.clone(),
            )
            .hash_password_with_salt(secret, &salt),
            Algorithm::Pbkdf2Sha256 => Pbkdf2::new(pbkdf2::Algorithm::Pbkdf2Sha256, self.pbkdf2)
                .hash_password_with_salt(secret, &salt),
        };
        hash.map(|hash| hash.to_string())
            .map_err(|error| HashError(format!("{} hashing failed: {error}", self.algorithm)))
    }

    /// Checks `secret` against `stored`; when it matches and `stored` is not
    /// what [`Scheme::hash`] would make, also returns a fresh hash.
    pub(crate) fn verify_and_update(
        &self,
        secret: &[u8],
        stored: &str,
    ) -> Result<Verification, HashError> {
        let not_valid = Verification {
            valid: false,
            new_hash: None,
        };
        let Some(stored) = StoredHash::parse(stored) else {
            return Ok(not_valid);
        };
        if !stored.verify(secret)? {
            return Ok(not_valid);
        }
        let new_hash = if self.is_current(&stored) {
            None
        } else {
            Some(self.hash(secret)?)
        };
        Ok(Verification {
            valid: true,
            new_hash,
        })
    }

    /// Whether `stored` uses the configured algorithm, version, parameters and
    /// format exactly. Stronger parameters count as different too, like
    /// argon2-cffi's `check_needs_rehash`: the configuration is the policy.
    fn is_current(&self, stored: &StoredHash<'_>) -> bool {
        match (self.algorithm, stored) {
            (
                Algorithm::Argon2id,
                StoredHash::Argon2 {
                    algorithm: argon2::Algorithm::Argon2id,
                    version: argon2::Version::V0x13,
                    params,
                    ..
                },
            ) => {
                params.m_cost() == self.argon2.m_cost()
                    && params.t_cost() == self.argon2.t_cost()
                    && params.p_cost() == self.argon2.p_cost()
                    && params.output_len() == Some(OUTPUT_BYTES)
                    && params.keyid().is_empty()
                    && params.data().is_empty()
            }
            (
                Algorithm::Pbkdf2Sha256,
                StoredHash::Pbkdf2Phc {
                    algorithm: pbkdf2::Algorithm::Pbkdf2Sha256,
                    params,
                    ..
                },
            ) => *params == self.pbkdf2,
            // Another algorithm, or passlib's MCF form (re-written as PHC).
            _ => false,
        }
    }
}
