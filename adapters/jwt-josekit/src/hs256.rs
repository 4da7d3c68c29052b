//! The HS256 MAC itself, in pure Rust ([`hmac`] + [`sha2`]) instead of
//! josekit's OpenSSL HMAC, with a constant-time comparison: josekit signs
//! with it (as a [`JwsSigner`]), and the token codec's own decoder checks
//! with it ([`Hs256Key::verifies`]); the OAuth state codec still checks
//! through josekit (as a [`JwsVerifier`]).
//!
//! Why not josekit's `HmacJwsSigner` / `HmacJwsVerifier`:
//! - they compute the MAC through OpenSSL, which gives every thread that
//!   signs or checks a token OpenSSL thread state with an exit handler. A
//!   server's worker threads may still be exiting when the process exits, and
//!   OpenSSL 3's `atexit` cleanup frees every thread's handler list without
//!   waiting for them, while an exiting thread frees its own: a double free
//!   (`double free or corruption (fasttop)`, SIGABRT at exit; openssl#6214,
//!   rust-openssl#2256). With this key no request touches OpenSSL;
//! - josekit 0.10's verifier compares the MACs with `!=` on slices, which
//!   stops at the first differing byte, and a timing difference there lets an
//!   attacker guess a valid MAC byte by byte;
//! - a pure-Rust HMAC with the key schedule computed once is also faster
//!   than OpenSSL's, which sets up an `EVP_PKEY` signing context per call.
//!
//! On the way out josekit still writes the header and the base64url
//! segments; on the way in the token codec no longer calls josekit (see
//! `decode.rs`), the OAuth state codec still does.

use std::fmt;

use hmac::{Hmac, KeyInit as _, Mac as _};
use josekit::JoseError;
use josekit::jws::{HS256, JwsAlgorithm, JwsSigner, JwsVerifier};
use portcullis_domain::TokenError;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Bytes in an HS256 MAC.
pub(crate) const MAC_LEN: usize = 32;

/// An HS256 key: a josekit [`JwsSigner`] and [`JwsVerifier`] for `HS256`
/// (HMAC-SHA-256, RFC 7518 §3.2) over one secret.
///
/// It holds the HMAC state keyed once (the inner and outer pads already
/// hashed); each MAC starts from a copy of it.
#[derive(Clone)]
pub(crate) struct Hs256Key {
    keyed: Hmac<Sha256>,
}

impl Hs256Key {
    /// A key over `secret`. HMAC takes a key of any length (one longer than
    /// SHA-256's 64-byte block is hashed first, as RFC 2104 says); the
    /// minimum length is the codec's rule, checked before this.
    pub(crate) fn new(secret: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            keyed: Hmac::new_from_slice(secret)?,
        })
    }

    /// Whether `signature` is the HMAC-SHA-256 of `message` under this key,
    /// compared in constant time.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let expected = self.mac(message);
        // Lengths are public (HS256 MACs are 32 bytes): `ct_eq` is `false`
        // for unequal lengths and constant-time over the bytes otherwise.
        bool::from(expected.as_slice().ct_eq(signature))
    }

    /// HMAC-SHA-256 of `message` under this key.
    fn mac(&self, message: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Key").finish_non_exhaustive()
    }
}

impl JwsSigner for Hs256Key {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &HS256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        MAC_LEN
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        Ok(self.mac(message).to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

impl JwsVerifier for Hs256Key {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &HS256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        if self.verifies(message, signature) {
            Ok(())
        } else {
            Err(JoseError::InvalidSignature(TokenError::Invalid.into()))
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a key shorter than the block) and 6 (a key
    /// longer than the block, hashed first).
    #[test]
    fn macs_are_rfc_4231_hmac_sha_256() {
        let key = Hs256Key::new(b"Jefe").unwrap();
        assert_eq!(
            JwsSigner::sign(&key, b"what do ya want for nothing?").unwrap(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        let key = Hs256Key::new(&[0xaa; 131]).unwrap();
        assert_eq!(
            JwsSigner::sign(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap(),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn accepts_only_the_exact_mac() {
        let key = Hs256Key::new(&[7_u8; 32]).unwrap();
        let mac = JwsSigner::sign(&key, b"message").unwrap();
        assert_eq!(mac.len(), 32);
        assert!(key.verify(b"message", &mac).is_ok());
        assert!(key.verify(b"messagE", &mac).is_err());
        let mut flipped = mac.clone();
        flipped[31] ^= 1;
        assert!(key.verify(b"message", &flipped).is_err());
        assert!(key.verify(b"message", &mac[..31]).is_err());
        let mut longer = mac.clone();
        longer.push(0);
        assert!(key.verify(b"message", &longer).is_err());
        assert!(key.verify(b"message", b"").is_err());
        let other = Hs256Key::new(&[8_u8; 32]).unwrap();
        assert!(other.verify(b"message", &mac).is_err());
        assert_eq!(JwsVerifier::algorithm(&key).name(), "HS256");
        assert_eq!(JwsSigner::algorithm(&key).name(), "HS256");
        assert_eq!(key.signature_len(), 32);
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
