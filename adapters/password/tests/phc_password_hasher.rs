//! The `PasswordHasher` contract as `PhcPasswordHasher` keeps it, through the
//! public API only.
//!
//! The Python hashes below were made with pwdlib 0.3.1 (argon2-cffi 25.1.0) and
//! passlib 1.7.4, the libraries a FastAPI Users service stores hashes with.

use portcullis_domain::{PasswordHasher, Verification};
use portcullis_password::{Algorithm, HasherConfig, PhcPasswordHasher};

const SECRET: &str = "correct horse battery";

/// `PasswordHash.recommended().hash(SECRET)` (pwdlib, FastAPI Users' default).
const PWDLIB_ARGON2ID: &str = "$argon2id$v=19$m=65536,t=3,p=4$G4IAIla6mV4Az1oEhrDIvw$6bnG+8+ia0+tSuMqAYMaO5S6MJL/zo+dtxUkxmoRjJ0";
/// `PasswordHash.recommended().hash("pässwörd ✓ 密码")`.
const PWDLIB_ARGON2ID_UNICODE: &str = "$argon2id$v=19$m=65536,t=3,p=4$7eerEk2r5z6Sjv5EVc5rXQ$L2Yof5ouh579MEc1V8so4ORa3eJx/OECWsiswvlqaqw";
/// `pbkdf2_sha256.hash(SECRET)` (passlib, MCF form, 29 000 rounds).
const PASSLIB_PBKDF2_SHA256: &str =
    "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$32.PPVKyz0GwsOk2INiBEjWcRjTpXehXSQzXWKvpABc";
/// `pbkdf2_sha256.using(rounds=600000).hash(SECRET)`.
const PASSLIB_PBKDF2_SHA256_600K: &str =
    "$pbkdf2-sha256$600000$uLd2jnHO.T9H6J0TIiQkJA$gfCldQKgKJr55Cn2PRKboYbQHfC06OMqeaZWoh2Czus";
/// `pbkdf2_sha512.hash(SECRET)`.
const PASSLIB_PBKDF2_SHA512: &str = "$pbkdf2-sha512$25000$am0NQUhpTUnJOUfonZNSKg$AmBoE/mQGXE8/o4ZV6eMEb/ztkK6DVUuchwR6xGRko0tiks8awF1PWdaVHmOmNL.Z4VPfJDgahZO5rUDX0ZB0Q";
/// argon2-cffi `PasswordHasher(time_cost=2, memory_cost=8192, parallelism=2, type=Type.I)`.
const CFFI_ARGON2I: &str = "$argon2i$v=19$m=8192,t=2,p=2$1Fjoubq7o2/KApVDMIrN0Q$N9JPuUEL9TTIiu6fHQW5OgRMnNLZFllg0bjfGYCa/hs";
/// argon2-cffi `PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1, type=Type.D)`.
const CFFI_ARGON2D: &str = "$argon2d$v=19$m=4096,t=1,p=1$+U6QN0fggrNQd427g9wIig$6OqQauHvN9bO1nU58va6DxfWCbltS5ZT9E5N1ugKI5U";
/// argon2-cffi `hash_secret(..., version=16)`: argon2 version 1.0.
const CFFI_ARGON2ID_V16: &str = "$argon2id$v=16$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$GgbtLs5JZ7AX3GAjmU/jHaMgumncH5pb3eXH0C0jEXw";
/// The same hash as old libargon2 wrote it, without `v=`; argon2-cffi reads
/// it as version 1.0 and verifies it.
const CFFI_ARGON2ID_NO_VERSION: &str =
    "$argon2id$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$GgbtLs5JZ7AX3GAjmU/jHaMgumncH5pb3eXH0C0jEXw";

/// `BcryptHasher().hash(SECRET)` (pwdlib: cost 12, `$2b$`), which FastAPI
/// Users 15 still verifies.
const PWDLIB_BCRYPT: &str = "$2b$12$tJrT8td6ecJo0a8D8qj.UeO/hNUxZS0wZZ89I8RH.fgeLiBstf4Lm";
/// `bcrypt.using(ident="2a").hash(SECRET)` and `ident="2y"` (passlib 1.7.4,
/// cost 12; what FastAPI Users < 13 wrote).
const PASSLIB_BCRYPT_2A: &str = "$2a$12$dUOLPc/CeCT4b/4L3UkW8O8v4CN/mbIpyE.K1S9XW7kHx/TaS7DC.";
const PASSLIB_BCRYPT_2Y: &str = "$2y$12$xD03pF/SFLqMS.mpWPNeFO.G498EFtwQtcaz9c.SxogaTA.695.Tu";

const NOT_VALID: Verification = Verification {
    valid: false,
    new_hash: None,
};

fn hasher(config: HasherConfig) -> PhcPasswordHasher {
    PhcPasswordHasher::new(config).expect("valid config")
}

fn argon2_hasher() -> PhcPasswordHasher {
    hasher(HasherConfig::default())
}

fn pbkdf2_hasher() -> PhcPasswordHasher {
    hasher(HasherConfig {
        algorithm: Algorithm::Pbkdf2Sha256,
        ..HasherConfig::default()
    })
}

/// Checks that `stored` verifies and is upgraded to a hash starting with
/// `prefix`, which itself verifies without a further upgrade.
async fn assert_upgraded(hasher: &PhcPasswordHasher, stored: &str, prefix: &str) {
    let check = hasher
        .verify_and_update(SECRET, stored)
        .await
        .expect("verify");
    assert!(check.valid, "{stored} should verify");
    let new_hash = check
        .new_hash
        .unwrap_or_else(|| panic!("{stored} should be upgraded"));
    assert!(
        new_hash.starts_with(prefix),
        "{new_hash} should start with {prefix}"
    );
    let again = hasher
        .verify_and_update(SECRET, &new_hash)
        .await
        .expect("verify");
    assert_eq!(
        again,
        Verification {
            valid: true,
            new_hash: None
        }
    );
}

/// The salt field of a PHC string, decoded length in bytes (unpadded B64).
fn salt_bytes(phc: &str) -> usize {
    let fields: Vec<&str> = phc.split('$').collect();
    fields[fields.len() - 2].len() * 3 / 4
}

#[tokio::test(flavor = "multi_thread")]
async fn argon2id_round_trip_uses_the_configured_parameters_and_a_fresh_salt() {
    let hasher = argon2_hasher();
    let first = hasher.hash(SECRET).await.expect("hash");
    let second = hasher.hash(SECRET).await.expect("hash");
    assert!(
        first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{first}"
    );
    assert_eq!(salt_bytes(&first), 16);
    assert_ne!(first, second, "each hash gets its own random salt");
    for stored in [&first, &second] {
        let check = hasher
            .verify_and_update(SECRET, stored)
            .await
            .expect("verify");
        assert_eq!(
            check,
            Verification {
                valid: true,
                new_hash: None
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pbkdf2_round_trip_uses_600k_rounds_and_a_fresh_salt() {
    let hasher = pbkdf2_hasher();
    let stored = hasher.hash(SECRET).await.expect("hash");
    assert!(
        stored.starts_with("$pbkdf2-sha256$i=600000,l=32$"),
        "{stored}"
    );
    assert_eq!(salt_bytes(&stored), 16);
    assert_ne!(stored, hasher.hash(SECRET).await.expect("hash"));
    let check = hasher
        .verify_and_update(SECRET, &stored)
        .await
        .expect("verify");
    assert_eq!(
        check,
        Verification {
            valid: true,
            new_hash: None
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_argon2_parameters_appear_in_new_hashes() {
    let hasher = hasher(HasherConfig {
        argon2_memory_kib: 8192,
        argon2_iterations: 1,
        argon2_parallelism: 2,
        ..HasherConfig::default()
    });
    let stored = hasher.hash(SECRET).await.expect("hash");
    assert!(
        stored.starts_with("$argon2id$v=19$m=8192,t=1,p=2$"),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_not_valid_and_gets_no_new_hash() {
    for hasher in [argon2_hasher(), pbkdf2_hasher()] {
        let stored = hasher.hash(SECRET).await.expect("hash");
        for wrong in ["correct horse battery ", "Correct horse battery", ""] {
            let check = hasher
                .verify_and_update(wrong, &stored)
                .await
                .expect("verify");
            assert_eq!(check, NOT_VALID, "{wrong:?} against {stored}");
        }
    }
    // Also for hashes that would otherwise be upgraded.
    let hasher = argon2_hasher();
    for stored in [PWDLIB_ARGON2ID, PASSLIB_PBKDF2_SHA256] {
        let check = hasher
            .verify_and_update("hunter2", stored)
            .await
            .expect("verify");
        assert_eq!(check, NOT_VALID, "{stored}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_or_unsupported_hashes_are_not_valid_and_not_errors() {
    let hasher = argon2_hasher();
    let genuine = hasher.hash(SECRET).await.expect("hash");
    // Flip one character of the output.
    let mut tampered = genuine.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let cases = [
        String::new(),
        SECRET.to_owned(),
        "$".to_owned(),
        "$argon2id$".to_owned(),
        "$argon2id$v=19$m=19456,t=2,p=1$".to_owned(),
        // Salt but no output.
        genuine.rsplit_once('$').expect("fields").0.to_owned(),
        // Truncated output.
        genuine[..genuine.len() - 10].to_owned(),
        tampered,
        format!("{genuine}$extra"),
        genuine.replace("v=19", "v=20"),
        genuine.replace("m=19456", "m=banana"),
        genuine.replace("m=19456", "m=4"),
        // Would take 4 TiB of memory: refused, not attempted.
        genuine.replace("m=19456", "m=4294967295"),
        genuine.replace("$argon2id$", "$argon2x$"),
        genuine.replace("$argon2id$", "$scrypt$"),
        // bcrypt forms nobody of FastAPI Users' wrote, or too costly to check.
        PWDLIB_BCRYPT.replace("$2b$", "$2x$"),
        PWDLIB_BCRYPT.replace("$2b$12$", "$2b$31$"),
        PWDLIB_BCRYPT[..59].to_owned(),
        "$pbkdf2-sha256$i=600000,l=32$c2FsdA$".to_owned(),
        "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA".to_owned(),
        "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$MA".to_owned(),
        "$pbkdf2-sha256$29000$4TxHSCnFWEspRQihFAIghA$not base64!".to_owned(),
        "$pbkdf2$29000$4TxHSCnFWEspRQihFAIghA$32.PPVKyz0GwsOk2INiBEjWcRjTpXehXSQzXWKvpABc"
            .to_owned(),
        PASSLIB_PBKDF2_SHA256.replace("29000", "4000000000"),
    ];
    for stored in &cases {
        let check = hasher.verify_and_update(SECRET, stored).await;
        assert_eq!(check, Ok(NOT_VALID), "{stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pwdlib_and_passlib_bcrypt_hashes_verify_and_are_upgraded_to_the_configured_scheme() {
    for stored in [PWDLIB_BCRYPT, PASSLIB_BCRYPT_2A, PASSLIB_BCRYPT_2Y] {
        assert_upgraded(&argon2_hasher(), stored, "$argon2id$v=19$m=19456,t=2,p=1$").await;
        assert_upgraded(&pbkdf2_hasher(), stored, "$pbkdf2-sha256$i=600000,l=32$").await;
        let wrong = argon2_hasher()
            .verify_and_update("correct horse batterY", stored)
            .await;
        assert_eq!(wrong, Ok(NOT_VALID), "{stored}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weaker_argon2id_hash_verifies_and_is_upgraded_to_the_configured_parameters() {
    let weak = hasher(HasherConfig {
        argon2_memory_kib: 8192,
        argon2_iterations: 1,
        ..HasherConfig::default()
    });
    let stored = weak.hash(SECRET).await.expect("hash");
    assert!(
        stored.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
        "{stored}"
    );
    assert_upgraded(&argon2_hasher(), &stored, "$argon2id$v=19$m=19456,t=2,p=1$").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pbkdf2_hash_verifies_under_argon2_config_and_is_upgraded_to_argon2id() {
    let stored = pbkdf2_hasher().hash(SECRET).await.expect("hash");
    assert_upgraded(&argon2_hasher(), &stored, "$argon2id$v=19$m=19456,t=2,p=1$").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_argon2_hash_verifies_under_pbkdf2_config_and_is_upgraded_to_pbkdf2() {
    let stored = argon2_hasher().hash(SECRET).await.expect("hash");
    assert_upgraded(&pbkdf2_hasher(), &stored, "$pbkdf2-sha256$i=600000,l=32$").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pbkdf2_hash_with_fewer_rounds_is_upgraded() {
    let fewer = hasher(HasherConfig {
        algorithm: Algorithm::Pbkdf2Sha256,
        pbkdf2_rounds: 1_000,
        ..HasherConfig::default()
    });
    let stored = fewer.hash(SECRET).await.expect("hash");
    assert!(
        stored.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
        "{stored}"
    );
    assert_upgraded(&pbkdf2_hasher(), &stored, "$pbkdf2-sha256$i=600000,l=32$").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pwdlib_argon2id_hash_from_fastapi_users_verifies() {
    // Stronger than the OWASP default, but not the configured parameters.
    assert_upgraded(
        &argon2_hasher(),
        PWDLIB_ARGON2ID,
        "$argon2id$v=19$m=19456,t=2,p=1$",
    )
    .await;
    // Configured like pwdlib, it is kept as it is.
    let like_pwdlib = hasher(HasherConfig {
        argon2_memory_kib: 65536,
        argon2_iterations: 3,
        argon2_parallelism: 4,
        ..HasherConfig::default()
    });
    let check = like_pwdlib
        .verify_and_update(SECRET, PWDLIB_ARGON2ID)
        .await
        .expect("verify");
    assert_eq!(
        check,
        Verification {
            valid: true,
            new_hash: None
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pwdlib_hash_of_a_non_ascii_password_verifies_on_its_utf8_bytes() {
    let hasher = argon2_hasher();
    let check = hasher
        .verify_and_update("pässwörd ✓ 密码", PWDLIB_ARGON2ID_UNICODE)
        .await
        .expect("verify");
    assert!(check.valid);
    // The same letters in decomposed form are other bytes: not the password.
    let decomposed = "pa\u{308}sswo\u{308}rd ✓ 密码";
    let check = hasher
        .verify_and_update(decomposed, PWDLIB_ARGON2ID_UNICODE)
        .await;
    assert_eq!(check, Ok(NOT_VALID));
}

#[tokio::test(flavor = "multi_thread")]
async fn passlib_pbkdf2_mcf_hashes_verify_and_are_rewritten_as_phc() {
    assert_upgraded(&argon2_hasher(), PASSLIB_PBKDF2_SHA256, "$argon2id$").await;
    assert_upgraded(&argon2_hasher(), PASSLIB_PBKDF2_SHA512, "$argon2id$").await;
    // Even at the configured round count, the MCF form becomes PHC.
    assert_upgraded(
        &pbkdf2_hasher(),
        PASSLIB_PBKDF2_SHA256_600K,
        "$pbkdf2-sha256$i=600000,l=32$",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn argon2i_argon2d_and_version_1_0_hashes_verify_and_are_upgraded() {
    let hasher = argon2_hasher();
    for stored in [
        CFFI_ARGON2I,
        CFFI_ARGON2D,
        CFFI_ARGON2ID_V16,
        CFFI_ARGON2ID_NO_VERSION,
    ] {
        assert_upgraded(&hasher, stored, "$argon2id$v=19$m=19456,t=2,p=1$").await;
        let check = hasher
            .verify_and_update("wrong", stored)
            .await
            .expect("verify");
        assert_eq!(check, NOT_VALID, "{stored}");
    }
    // v=16 and v=19 differ in the computation: the version is not ignored.
    let relabelled = CFFI_ARGON2ID_V16.replace("v=16", "v=19");
    let check = hasher.verify_and_update(SECRET, &relabelled).await;
    assert_eq!(check, Ok(NOT_VALID));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_argon2id_hash_with_the_configured_parameters_but_another_output_length_is_upgraded() {
    // argon2-cffi `hash_secret(SECRET, b"saltsaltsaltsalt", time_cost=2,
    // memory_cost=19456, parallelism=1, hash_len=16, type=Type.ID)`.
    let short_output =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$ayZLIgl+/y5syRqPdhTryg";
    assert_upgraded(
        &argon2_hasher(),
        short_output,
        "$argon2id$v=19$m=19456,t=2,p=1$",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_settings_are_refused_when_the_hasher_is_built() {
    let error = PhcPasswordHasher::new(HasherConfig {
        argon2_memory_kib: 4,
        ..HasherConfig::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("ARGON2_MEMORY_KIB"), "{error}");
    assert!(
        PhcPasswordHasher::new(HasherConfig {
            argon2_iterations: 0,
            ..HasherConfig::default()
        })
        .is_err()
    );
}
