//! What the use cases share about the [`ThrottleLedger`]: the key an address
//! is counted under, and the mail allowance.
//!
//! [`ThrottleLedger`]: portcullis_domain::ThrottleLedger

use std::time::{Duration, SystemTime};

use portcullis_domain::{EmailAddress, ThrottleKind, ThrottleWindow};

use crate::{InfraError, Policy, UserService};

/// The longest key a [`ThrottleLedger`](portcullis_domain::ThrottleLedger)
/// takes, in bytes.
const MAX_KEY_BYTES: usize = 320;

/// The key `email` is counted under: the address lowercased (its
/// [`EmailAddress::key`]), cut at a character boundary to the ledger's 320
/// bytes (an address may have 254 characters, of up to four bytes each;
/// addresses that long and alike up to there share a count).
pub(crate) fn throttle_key(email: &EmailAddress) -> String {
    let mut key = email.key();
    if key.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

/// How long until `window` (of length `length`) closes, seen at `now`.
pub(crate) fn time_left(window: ThrottleWindow, length: Duration, now: SystemTime) -> Duration {
    window
        .closes(length)
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
}

impl UserService {
    /// Counts one mail request for `email` and says whether a mail may go
    /// out: at most [`Policy::mail_per_address_per_hour`] per address within
    /// [`Policy::MAIL_WINDOW`] (always, when that is 0; nothing is counted
    /// then).
    ///
    /// Every request for a well-formed address is counted, whether a mail
    /// follows or not (no account, inactive, already verified): the known
    /// and unknown paths then do the same store work, so neither the time
    /// nor the store tells who has an account. A request that sends nothing
    /// can only use up an allowance that anyone can use up by asking for
    /// real mails, so the cap stays at most N mails an hour.
    pub(crate) async fn mail_allowed(&self, email: &EmailAddress) -> Result<bool, InfraError> {
        let cap = self.policy.mail_per_address_per_hour;
        if cap == 0 {
            return Ok(true);
        }
        let window = self
            .ports
            .throttle
            .hit(
                ThrottleKind::Mail,
                &throttle_key(email),
                self.ports.clock.now(),
                Policy::MAIL_WINDOW,
            )
            .await?;
        Ok(window.count <= cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_lowercased_address_within_320_bytes() {
        let email = EmailAddress::parse("Ann.Lee@Example.COM").unwrap();
        assert_eq!(throttle_key(&email), "ann.lee@example.com");
        // 64 + 8 × 15 two-byte letters, with the dots, @ and "de": 379
        // bytes.
        let local: String = "Ä".repeat(64);
        let domain = format!("{}de", format!("{}.", "ü".repeat(15)).repeat(8));
        let long = EmailAddress::parse(&format!("{local}@{domain}")).unwrap();
        let key = throttle_key(&long);
        assert!(key.len() <= 320 && key.len() > 316, "{}", key.len());
        assert!(long.key().starts_with(&key));
    }
}
