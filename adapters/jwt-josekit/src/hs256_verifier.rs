//! The one josekit piece replaced: HS256 signature checking, so that the
//! MAC comparison takes constant time.

use std::fmt;

use josekit::JoseError;
use josekit::jws::alg::hmac::HmacJwsSigner;
use josekit::jws::{JwsAlgorithm, JwsSigner as _, JwsVerifier};
use portcullis_domain::TokenError;
use subtle::ConstantTimeEq as _;

/// A josekit [`JwsVerifier`] for HS256 that recomputes the MAC with
/// josekit's signer and compares it with [`subtle`] in constant time.
///
/// Why not josekit's `HmacJwsVerifier`: josekit 0.10 compares the MACs with
/// `!=` on slices, which stops at the first differing byte, and a timing
/// difference there lets an attacker guess a valid MAC byte by byte.
#[derive(Clone)]
pub(crate) struct Hs256Verifier {
    signer: HmacJwsSigner,
}

impl Hs256Verifier {
    /// Checks signatures made by `signer` (an HS256 signer).
    pub(crate) const fn new(signer: HmacJwsSigner) -> Self {
        Self { signer }
    }
}

impl fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Verifier").finish_non_exhaustive()
    }
}

impl JwsVerifier for Hs256Verifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.signer.algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let expected = self.signer.sign(message)?;
        // Lengths are public (HS256 MACs are 32 bytes): `ct_eq` is `false`
        // for unequal lengths and constant-time over the bytes otherwise.
        if bool::from(expected.as_slice().ct_eq(signature)) {
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
    use josekit::jws::HS256;

    use super::*;

    #[test]
    fn accepts_only_the_exact_mac() {
        let signer = HS256.signer_from_bytes([7_u8; 32]).unwrap();
        let mac = signer.sign(b"message").unwrap();
        let verifier = Hs256Verifier::new(signer);
        assert!(verifier.verify(b"message", &mac).is_ok());
        assert!(verifier.verify(b"messagE", &mac).is_err());
        let mut flipped = mac.clone();
        flipped[31] ^= 1;
        assert!(verifier.verify(b"message", &flipped).is_err());
        assert!(verifier.verify(b"message", &mac[..31]).is_err());
        assert!(verifier.verify(b"message", b"").is_err());
        assert_eq!(verifier.algorithm().name(), "HS256");
    }
}
