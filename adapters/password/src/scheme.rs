//! The synchronous, CPU-heavy work: hashing a secret with the configured
//! scheme, and checking a secret against a stored hash, re-hashing it when the
//! stored hash is not what the configuration would make today.

use std::sync::Arc;
use std::time::Instant;

use argon2::Argon2;
use password_hash::PasswordHasher as _;
use password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use pbkdf2::Pbkdf2;

use portcullis_domain::{HashError, Verification};

use crate::block_pool::BlockPool;
use crate::config::{Algorithm, ConfigError, HasherConfig};
use crate::cost_book::CostBook;
use crate::lanes::LanePool;
use crate::stored_hash::StoredHash;

/// Salt length of new hashes, in bytes (the PHC format's recommendation).
const SALT_BYTES: usize = 16;
/// Output length of new hashes, in bytes.
const OUTPUT_BYTES: usize = 32;

/// A validated configuration turned into the crates' parameter types, and the
/// argon2 memory its jobs reuse.
#[derive(Debug)]
pub(crate) struct Scheme {
    algorithm: Algorithm,
    argon2: argon2::Params,
    pbkdf2: pbkdf2::Params,
    /// Argon2 block buffers of the configured memory cost, one per job that
    /// may run at once, and the threads argon2 runs on.
    pub(crate) memory: Arc<BlockPool>,
    /// What each parameter set met so far costs to compute.
    pub(crate) costs: CostBook,
}

/// The parameter set of a hash string, as [`CostBook`] keys it: everything
/// before the salt and the hash (`$argon2id$v=19$m=65536,t=3,p=4`,
/// `$pbkdf2-sha256$i=600000,l=32`, passlib's `$pbkdf2-sha256$29000`,
/// bcrypt's `$2b$12`).
fn cost_key(hash: &str) -> &str {
    let bytes = hash.as_bytes();
    // bcrypt has no `$` between its salt and its hash: `$2b$12$` + 53.
    if bytes.len() == 60 && bytes.starts_with(b"$2") && bytes[3] == b'$' && bytes[6] == b'$' {
        return hash.get(..6).unwrap_or(hash);
    }
    hash.rsplitn(3, '$').nth(2).unwrap_or(hash)
}

impl Scheme {
    /// The scheme of `config`, its argon2 jobs computed on `lanes`, one at
    /// a time per thread of it.
    pub(crate) fn new(config: &HasherConfig, lanes: Arc<LanePool>) -> Result<Self, ConfigError> {
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
            memory: BlockPool::on_lanes(argon2.block_count(), lanes),
            argon2,
            pbkdf2,
            costs: CostBook::default(),
        })
    }

    /// A PHC string of `secret` with the configured algorithm and a fresh
    /// random salt.
    /// Its compute time is counted in [`Scheme::costs`].
    pub(crate) fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt)
            .map_err(|error| HashError::Failed(format!("no randomness for a salt: {error}")))?;
        let start = Instant::now();
        let hash: password_hash::Result<PasswordHash> = match self.algorithm {
            Algorithm::Argon2id => self.hash_argon2id(secret, &salt),
            Algorithm::Pbkdf2Sha256 => Pbkdf2::new(pbkdf2::Algorithm::Pbkdf2Sha256, self.pbkdf2)
                .hash_password_with_salt(secret, &salt),
        };
        let hash = hash.map(|hash| hash.to_string()).map_err(|error| {
            HashError::Failed(format!("{} hashing failed: {error}", self.algorithm))
        })?;
        self.costs.record(cost_key(&hash), start.elapsed());
        Ok(hash)
    }

    /// What `Argon2::hash_password_with_salt` makes, computed in a pooled
    /// buffer instead of a fresh allocation.
    fn hash_argon2id(&self, secret: &[u8], salt: &[u8]) -> password_hash::Result<PasswordHash> {
        let (algorithm, version) = (argon2::Algorithm::Argon2id, argon2::Version::V0x13);
        let argon2 = Argon2::new(algorithm, version, self.argon2.clone());
        let mut output = [0u8; OUTPUT_BYTES];
        self.memory.hash_into(&argon2, secret, salt, &mut output)?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&self.argon2)?,
            salt: Some(Salt::new(salt)?),
            hash: Some(Output::new(&output)?),
        })
    }

    /// Checks `secret` against `stored`; when it matches and `stored` is not
    /// what [`Scheme::hash`] would make, also returns a fresh hash. The
    /// compute time of the check is counted in [`Scheme::costs`] under the
    /// stored hash's parameters.
    pub(crate) fn verify_and_update(
        &self,
        secret: &[u8],
        stored: &str,
    ) -> Result<Verification, HashError> {
        let not_valid = Verification {
            valid: false,
            new_hash: None,
        };
        let stored_text = stored;
        let Some(stored) = StoredHash::parse(stored) else {
            // Spend what a real check costs, so that an account whose hash
            // this hasher cannot read (a foreign format, a cost over the limits) does not
            // answer measurably faster than a wrong password.
            self.hash(secret)?;
            return Ok(not_valid);
        };
        let start = Instant::now();
        let valid = stored.verify(secret, &self.memory)?;
        self.costs.record(cost_key(stored_text), start.elapsed());
        if !valid {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One hashing thread (a scheme for one job at a time).
    fn one_lane() -> Arc<LanePool> {
        Arc::new(LanePool::new(1))
    }

    #[test]
    fn a_new_argon2id_hash_is_what_the_argon2_crate_would_write() {
        let config = HasherConfig {
            argon2_memory_kib: 256,
            argon2_iterations: 1,
            argon2_parallelism: 2,
            ..HasherConfig::default()
        };
        let scheme = Scheme::new(&config, one_lane()).expect("valid");
        let salt = b"saltsaltsaltsalt";
        let ours = scheme.hash_argon2id(b"pw", salt).expect("hash");
        let params = argon2::Params::new(256, 1, 2, Some(OUTPUT_BYTES)).expect("params");
        let theirs = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_with_salt(b"pw", salt)
            .expect("hash");
        assert_eq!(ours.to_string(), theirs.to_string());
        assert_eq!(scheme.memory.made(), 1);
    }

    #[test]
    fn an_unreadable_stored_hash_costs_a_hash_like_a_real_check() {
        let config = HasherConfig {
            argon2_memory_kib: 256,
            argon2_iterations: 1,
            ..HasherConfig::default()
        };
        let scheme = Scheme::new(&config, one_lane()).expect("valid");
        assert_eq!(scheme.memory.made(), 0);
        let check = scheme
            .verify_and_update(b"pw", "$2b$12$bcryptbcryptbcryptbcryptbcryptbcryptbcrypt")
            .expect("no error");
        assert!(!check.valid && check.new_hash.is_none());
        assert_eq!(scheme.memory.made(), 1, "an argon2 hash was computed");
    }

    #[test]
    fn the_cost_key_is_the_parameter_part_of_a_hash() {
        assert_eq!(
            cost_key("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
            "$argon2id$v=19$m=65536,t=3,p=4"
        );
        assert_eq!(
            cost_key(
                "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$32.PPVKyz0GwsOk2INiBEjWcRjTpXehXSQzXWKvpABc"
            ),
            "$pbkdf2-sha256$29000"
        );
    }

    /// passlib 1.7.4 `bcrypt.using(rounds=4, ident="2y").hash("pw")`.
    const BCRYPT_2Y_COST_4: &str = "$2y$04$SuZ/16FSomfmb4/oIzUJle6zptmysh/0/OXfm8XXiVSylwmIWVyTS";
    /// pwdlib 0.3 `BcryptHasher(rounds=8).hash("pw")`.
    const BCRYPT_2B_COST_8: &str = "$2b$08$iVewKHuDTb6mg8uEv4S93.EcQu9fzEJWkuEczHz9Wgc9Gv9k3FYxe";

    #[test]
    fn a_bcrypt_cost_key_names_its_cost() {
        assert_eq!(cost_key(BCRYPT_2Y_COST_4), "$2y$04");
        assert_eq!(cost_key(BCRYPT_2B_COST_8), "$2b$08");
    }

    #[test]
    fn a_bcrypt_hash_that_verifies_is_replaced_by_the_configured_argon2id() {
        let config = HasherConfig {
            argon2_memory_kib: 256,
            argon2_iterations: 1,
            ..HasherConfig::default()
        };
        let scheme = Scheme::new(&config, one_lane()).expect("valid");
        for stored in [BCRYPT_2Y_COST_4, BCRYPT_2B_COST_8] {
            let check = scheme.verify_and_update(b"pw", stored).expect("verify");
            assert!(check.valid, "{stored}");
            let new_hash = check.new_hash.expect("re-hashed");
            assert!(
                new_hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
                "{new_hash}"
            );
            let again = scheme.verify_and_update(b"pw", &new_hash).expect("verify");
            assert_eq!((again.valid, again.new_hash), (true, None));

            let wrong = scheme.verify_and_update(b"pW", stored).expect("verify");
            assert_eq!((wrong.valid, wrong.new_hash), (false, None));
        }
        let pbkdf2 = Scheme::new(
            &HasherConfig {
                algorithm: Algorithm::Pbkdf2Sha256,
                pbkdf2_rounds: 1_000,
                ..config
            },
            one_lane(),
        )
        .expect("valid");
        let check = pbkdf2
            .verify_and_update(b"pw", BCRYPT_2Y_COST_4)
            .expect("verify");
        let new_hash = check.new_hash.expect("re-hashed");
        assert!(
            new_hash.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{new_hash}"
        );
    }

    #[test]
    fn bcrypt_checks_are_counted_per_cost() {
        let config = HasherConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..HasherConfig::default()
        };
        let scheme = Scheme::new(&config, one_lane()).expect("valid");
        let check = scheme
            .verify_and_update(b"wrong", BCRYPT_2Y_COST_4)
            .expect("verify");
        assert!(!check.valid);
        assert!(
            scheme.costs.estimate("$2y$04").is_some(),
            "a failure is measured"
        );
        assert!(scheme.costs.estimate("$2b$08").is_none());
        scheme
            .verify_and_update(b"wrong", BCRYPT_2B_COST_8)
            .expect("verify");
        // Cost 8 is 16 times the rounds of cost 4: the slowest, whatever
        // the machine.
        let four = scheme.costs.estimate("$2y$04").expect("met");
        let eight = scheme.costs.estimate("$2b$08").expect("met");
        assert!(eight > four, "cost 8 {eight:?} <= cost 4 {four:?}");
        assert_eq!(scheme.costs.slowest(), eight);
    }

    #[test]
    fn every_computation_is_counted_under_its_parameter_set() {
        let fast = HasherConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..HasherConfig::default()
        };
        let slow = HasherConfig {
            argon2_memory_kib: 8192,
            argon2_iterations: 16,
            ..HasherConfig::default()
        };
        let scheme = Scheme::new(&fast, one_lane()).expect("valid");
        let other = Scheme::new(&slow, one_lane())
            .expect("valid")
            .hash(b"pw")
            .expect("hash");

        let own = scheme.hash(b"pw").expect("hash");
        let own_key = "$argon2id$v=19$m=64,t=1,p=1";
        assert!(own.starts_with(own_key), "{own}");
        assert!(
            scheme.costs.estimate(own_key).is_some(),
            "a new hash is measured"
        );

        let check = scheme
            .verify_and_update(b"wrong", &other)
            .expect("no error");
        assert!(!check.valid);
        let other_key = "$argon2id$v=19$m=8192,t=16,p=1";
        let other_cost = scheme
            .costs
            .estimate(other_key)
            .expect("a check is measured");
        // 2048 times the work: the slowest by far, whatever the machine.
        assert_eq!(scheme.costs.slowest(), other_cost);
        assert!(scheme.costs.estimate(own_key).expect("met") < other_cost);
    }
}
