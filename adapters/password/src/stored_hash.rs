//! Reading a stored hash string: which scheme made it, with which parameters,
//! and whether a secret matches it. Anything unreadable, unsupported or
//! outside the accepted limits is `None`, which callers treat as "not valid".

use argon2::Argon2;
use password_hash::PasswordVerifier;
use password_hash::phc::{Output, PasswordHash};
use pbkdf2::{Pbkdf2, mcf::PasswordHashRef};

use portcullis_domain::HashError;

use crate::block_pool::BlockPool;
use crate::config::{
    MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM, MAX_PBKDF2_ROUNDS,
    MIN_PBKDF2_ROUNDS,
};

/// Fewest hash bytes a stored hash may carry (80 bits, as the PHC format asks):
/// a shorter one would let a wrong secret match by chance.
const MIN_OUTPUT_BYTES: usize = 10;

/// A parsed stored hash.
#[derive(Debug)]
pub(crate) enum StoredHash<'a> {
    /// `$argon2id$…`, `$argon2i$…` or `$argon2d$…` (PHC).
    Argon2 {
        phc: PasswordHash,
        algorithm: argon2::Algorithm,
        version: argon2::Version,
        params: argon2::Params,
    },
    /// `$pbkdf2-sha256$i=…,l=…$…` or `$pbkdf2-sha512$…` (PHC).
    Pbkdf2Phc {
        phc: PasswordHash,
        algorithm: pbkdf2::Algorithm,
        params: pbkdf2::Params,
    },
    /// passlib's `$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>` (MCF).
    Pbkdf2Mcf(&'a PasswordHashRef),
}

impl<'a> StoredHash<'a> {
    /// Reads `stored`, or `None` when it is no hash this crate supports.
    pub(crate) fn parse(stored: &'a str) -> Option<Self> {
        let id = stored.strip_prefix('$')?.split('$').next()?;
        match id {
            "argon2id" | "argon2i" | "argon2d" => Self::parse_argon2(stored),
            "pbkdf2-sha256" | "pbkdf2-sha512" => {
                // PHC puts `i=…` in the third field; passlib's MCF a bare number.
                if stored.split('$').nth(2)?.contains('=') {
                    Self::parse_pbkdf2_phc(stored)
                } else {
                    Self::parse_pbkdf2_mcf(stored)
                }
            }
            _ => None,
        }
    }

    fn parse_argon2(stored: &str) -> Option<Self> {
        let mut phc = PasswordHash::new(stored).ok()?;
        let algorithm = argon2::Algorithm::new(phc.algorithm.as_str()).ok()?;
        // A hash without `v=` predates version 1.3: it is version 1.0 (0x10),
        // as libargon2 and argon2-cffi read it (the crate would assume 1.3).
        let version = argon2::Version::try_from(phc.version.unwrap_or(0x10)).ok()?;
        phc.version = Some(version.into());
        let params = argon2::Params::try_from(&phc).ok()?;
        let within_limits = params.m_cost() <= MAX_ARGON2_MEMORY_KIB
            && params.t_cost() <= MAX_ARGON2_ITERATIONS
            && params.p_cost() <= MAX_ARGON2_PARALLELISM;
        (within_limits && has_salt_and_output(&phc)).then_some(Self::Argon2 {
            phc,
            algorithm,
            version,
            params,
        })
    }

    fn parse_pbkdf2_phc(stored: &str) -> Option<Self> {
        let phc = PasswordHash::new(stored).ok()?;
        let algorithm = pbkdf2::Algorithm::new(phc.algorithm.as_str()).ok()?;
        // Also checks: no version, at least 1 000 rounds, `l` = output length.
        let params = pbkdf2::Params::try_from(&phc).ok()?;
        (params.rounds() <= MAX_PBKDF2_ROUNDS && has_salt_and_output(&phc)).then_some(
            Self::Pbkdf2Phc {
                phc,
                algorithm,
                params,
            },
        )
    }

    fn parse_pbkdf2_mcf(stored: &'a str) -> Option<Self> {
        let hash = PasswordHashRef::new(stored).ok()?;
        let mut fields = hash.fields();
        let rounds: u32 = fields.next()?.as_str().parse().ok()?;
        let salt = fields.next()?;
        let output = fields.next()?;
        // passlib's "ab64" has no padding: 4 characters carry 3 bytes.
        let output_bytes = output.as_str().len() * 3 / 4;
        let well_formed = fields.next().is_none()
            && (MIN_PBKDF2_ROUNDS..=MAX_PBKDF2_ROUNDS).contains(&rounds)
            && !salt.as_str().is_empty()
            && output_bytes >= MIN_OUTPUT_BYTES;
        well_formed.then_some(Self::Pbkdf2Mcf(hash))
    }

    /// Whether `secret` matches, compared in constant time. A mismatch or a
    /// hash the crates refuse is `false`; only a failure of the machine
    /// (memory, randomness) is an error. Argon2 work runs in `memory`.
    pub(crate) fn verify(&self, secret: &[u8], memory: &BlockPool) -> Result<bool, HashError> {
        // The algorithm, version and parameters are the hash's own.
        let outcome = match self {
            Self::Argon2 {
                phc,
                algorithm,
                version,
                params,
            } => verify_argon2(secret, phc, *algorithm, *version, params, memory),
            Self::Pbkdf2Phc { phc, .. } => Pbkdf2::default().verify_password(secret, phc),
            Self::Pbkdf2Mcf(hash) => Pbkdf2::default().verify_password(secret, *hash),
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(
                error @ (password_hash::Error::OutOfMemory
                | password_hash::Error::RngFailure
                | password_hash::Error::Internal
                | password_hash::Error::Crypto),
            ) => Err(HashError::Failed(format!(
                "password verification failed: {error}"
            ))),
            Err(_) => Ok(false),
        }
    }
}

/// What `Argon2::verify_password` does, computed in a pooled buffer: the
/// hash of `secret` with the stored salt and parameters (output length
/// included), compared with the stored output in constant time.
fn verify_argon2(
    secret: &[u8],
    phc: &PasswordHash,
    algorithm: argon2::Algorithm,
    version: argon2::Version,
    params: &argon2::Params,
    memory: &BlockPool,
) -> password_hash::Result<()> {
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return Err(password_hash::Error::PasswordInvalid);
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let computed = buffer
        .get_mut(..expected.len())
        .ok_or(password_hash::Error::OutputSize)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    memory.hash_into(&argon2, secret, salt, computed)?;
    // `Output`'s equality is constant-time.
    if Output::new(computed)? == *expected {
        Ok(())
    } else {
        Err(password_hash::Error::PasswordInvalid)
    }
}

fn has_salt_and_output(phc: &PasswordHash) -> bool {
    phc.salt.is_some() && phc.hash.is_some_and(|hash| hash.len() >= MIN_OUTPUT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_supported_form() {
        let argon2 = "$argon2id$v=19$m=65536,t=3,p=4$G4IAIla6mV4Az1oEhrDIvw$6bnG+8+ia0+tSuMqAYMaO5S6MJL/zo+dtxUkxmoRjJ0";
        assert!(matches!(
            StoredHash::parse(argon2),
            Some(StoredHash::Argon2 {
                algorithm: argon2::Algorithm::Argon2id,
                version: argon2::Version::V0x13,
                ..
            })
        ));
        let legacy = "$argon2id$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$GgbtLs5JZ7AX3GAjmU/jHaMgumncH5pb3eXH0C0jEXw";
        assert!(matches!(
            StoredHash::parse(legacy),
            Some(StoredHash::Argon2 {
                version: argon2::Version::V0x10,
                ..
            })
        ));
        let phc = "$pbkdf2-sha256$i=4096,l=40$c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx0$NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdU+HGNVGMfaxH6Q";
        assert!(matches!(
            StoredHash::parse(phc),
            Some(StoredHash::Pbkdf2Phc { .. })
        ));
        let mcf = "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$32.PPVKyz0GwsOk2INiBEjWcRjTpXehXSQzXWKvpABc";
        assert!(matches!(
            StoredHash::parse(mcf),
            Some(StoredHash::Pbkdf2Mcf(_))
        ));
    }

    #[test]
    fn refuses_hashes_whose_cost_exceeds_the_limits_without_computing_them() {
        // 4 TiB of memory: must be refused while parsing, never allocated.
        let huge = "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$GgbtLs5JZ7AX3GAjmU/jHaMgumncH5pb3eXH0C0jEXw";
        assert!(StoredHash::parse(huge).is_none());
        let slow = "$pbkdf2-sha256$4000000000$4TxHSCnFWEspRQihFAIghA$32.PPVKyz0GwsOk2INiBEjWcRjTpXehXSQzXWKvpABc";
        assert!(StoredHash::parse(slow).is_none());
    }

    #[test]
    fn refuses_an_mcf_hash_too_short_to_be_safe() {
        // One output byte: a wrong secret would match one time in 256.
        let short = "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$MA";
        assert!(StoredHash::parse(short).is_none());
    }
}
