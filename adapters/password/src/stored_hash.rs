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
    MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM, MAX_BCRYPT_COST,
    MAX_PBKDF2_ROUNDS, MIN_BCRYPT_COST, MIN_PBKDF2_ROUNDS,
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
    /// bcrypt, `$2a$`, `$2b$` or `$2y$` (pwdlib's `BcryptHasher`, passlib's
    /// `bcrypt`): `$2b$12$` then 22 characters of salt and 31 of hash.
    /// The whole 60-character string, checked well formed, its cost within
    /// the limits.
    Bcrypt(&'a str),
}

/// Length of a bcrypt hash string: `$2b$12$`, 22 salt and 31 hash characters.
const BCRYPT_LENGTH: usize = 60;

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
            // `$2x$` (crypt_blowfish's buggy-8-bit mode) is no hash pwdlib
            // or passlib writes, and the bcrypt crate would compute it as
            // `$2b$`: not supported.
            "2a" | "2b" | "2y" => Self::parse_bcrypt(stored),
            _ => None,
        }
    }

    fn parse_bcrypt(stored: &'a str) -> Option<Self> {
        let bytes = stored.as_bytes();
        let cost: u32 = stored.get(4..6)?.parse().ok()?;
        // bcrypt's alphabet: `./A-Za-z0-9`.
        let well_formed = bytes.len() == BCRYPT_LENGTH
            && bytes.get(3..4) == Some(b"$".as_slice())
            && bytes
                .get(4..6)
                .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
            && bytes.get(6..7) == Some(b"$".as_slice())
            && bytes[7..]
                .iter()
                .all(|&c| c == b'.' || c == b'/' || c.is_ascii_alphanumeric());
        (well_formed && (MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost))
            .then_some(Self::Bcrypt(stored))
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
            // Only the first 72 bytes of `secret` count (the crate's
            // `verify` truncates), as with pwdlib before bcrypt 5 and passlib.
            // The comparison is constant-time (`subtle`). A hash the crate
            // still refuses (non-canonical base64) is simply no match.
            Self::Bcrypt(hash) => return Ok(bcrypt::verify(secret, hash).unwrap_or(false)),
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

    /// passlib 1.7.4 `bcrypt.using(rounds=4, ident=…).hash("pw")` (os_crypt
    /// backend), one per ident.
    const PASSLIB_2A: &str = "$2a$04$56N5QLTC./KX0ImJpfsrke/jPV7YI4.lmfpve1vnIhjhwtgDjPPAy";
    const PASSLIB_2B: &str = "$2b$04$A8W6/OEOlu/TXfy7Uls.meoKAVNkJhqY0nU8iqPIeL5Ls3Hh0iHsG";
    const PASSLIB_2Y: &str = "$2y$04$SuZ/16FSomfmb4/oIzUJle6zptmysh/0/OXfm8XXiVSylwmIWVyTS";

    fn check(secret: &str, stored: &str) -> bool {
        let hash = StoredHash::parse(stored).expect("supported");
        hash.verify(secret.as_bytes(), &BlockPool::new(8, 1))
            .expect("no machine failure")
    }

    #[test]
    fn verifies_bcrypt_of_each_ident_passlib_wrote() {
        for stored in [PASSLIB_2A, PASSLIB_2B, PASSLIB_2Y] {
            assert!(
                matches!(StoredHash::parse(stored), Some(StoredHash::Bcrypt(_))),
                "{stored}"
            );
            assert!(check("pw", stored), "{stored}");
            assert!(!check("pW", stored), "{stored}");
            assert!(!check("", stored), "{stored}");
        }
    }

    #[test]
    fn bcrypt_reads_only_the_first_72_bytes_of_a_secret() {
        // passlib `bcrypt.using(rounds=4).hash("x" * 80)`: the 72 first count.
        let stored = "$2b$04$Q3a8/bsnDiygBppu8IK0Aevq3i4lCuagDdCU0dSjkDg5/weYqMlSS";
        assert!(check(&"x".repeat(80), stored));
        assert!(check(&"x".repeat(72), stored));
        assert!(!check(&"x".repeat(71), stored));
    }

    #[test]
    fn refuses_bcrypt_hashes_that_are_malformed_unsupported_or_too_costly() {
        let ok = PASSLIB_2B;
        let cases = [
            // crypt_blowfish's `$2x$`, and the original `$2$`.
            ok.replacen("$2b$", "$2x$", 1),
            ok.replacen("$2b$04$", "$2$04$", 1),
            // Costs outside 4..=MAX_BCRYPT_COST (15 would be 2 s a check; 31 days).
            ok.replacen("$04$", "$03$", 1),
            ok.replacen("$04$", &format!("${:02}$", MAX_BCRYPT_COST + 1), 1),
            ok.replacen("$04$", "$31$", 1),
            ok.replacen("$04$", "$4a$", 1),
            // Too short, too long, a character outside bcrypt's alphabet.
            ok[..59].to_owned(),
            format!("{ok}A"),
            ok.replacen('/', "+", 1),
            ok.replacen("$04$", "$04!", 1),
        ];
        for stored in &cases {
            assert!(StoredHash::parse(stored).is_none(), "{stored}");
        }
        let highest = ok.replacen("$04$", &format!("${MAX_BCRYPT_COST:02}$"), 1);
        assert!(matches!(
            StoredHash::parse(&highest),
            Some(StoredHash::Bcrypt(_))
        ));
    }

    #[test]
    fn refuses_an_mcf_hash_too_short_to_be_safe() {
        // One output byte: a wrong secret would match one time in 256.
        let short = "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$MA";
        assert!(StoredHash::parse(short).is_none());
    }
}
