//! The compact-JWS decoder behind [`JosekitTokenCodec`](crate::JosekitTokenCodec)'s
//! `open`: a hand-written replacement for josekit's
//! `jwt::decode_with_verifier` that gives the same answer for every input
//! (pinned by the tests in `tests.rs`) with far less work per token.
//!
//! What it costs less than josekit did: no `Vec` of dot positions, the MAC
//! and short segments decoded into stack buffers, no `Map` for the header or
//! the payload (josekit built both as `IndexMap`s, with a `String` per key),
//! and an `aud` checked while it is parsed instead of being built as a
//! `Value` and then copied into a `Vec<&str>`. A FastAPI Users access token
//! is read with one allocation: its `sub`.
//!
//! What stays exactly as josekit (0.10, over serde_json and base64 0.22) did
//! it, and why the answers do not change:
//! - the segments are decoded by the very engine josekit used,
//!   base64 0.22's `URL_SAFE_NO_PAD` (no padding, only the URL-safe
//!   alphabet, zero unused bits, no length of 1 mod 4);
//! - the JSON is parsed by serde_json from the same bytes with the same
//!   `from_slice` rules (whitespace around the object only, 128 levels of
//!   nesting, UTF-8 and surrogates checked); every member we do not read is
//!   still parsed into a [`Value`] and dropped, because serde_json's
//!   `IgnoredAny` would skip over invalid UTF-8 that a `Value` refuses;
//! - a name given twice keeps its last value, as serde_json's `Map::insert`
//!   did, and types are judged on that last value only;
//! - member names are compared after unescaping (`"\u0061lg"` is `alg`);
//! - header parameters other than `alg` and `typ` are rare and their rules
//!   many (`x5t`, `x5c`, `jwk`, …), so they are collected into a `Map` and
//!   judged by josekit's own [`JwsHeader::from_map`], as before.
//!
//! The order differs in one way that cannot change an answer (every failure
//! is the same `Invalid`, and nothing is kept between calls): the MAC is
//! checked first, so bytes nobody signed never reach the JSON parser.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::JwsHeader;
use portcullis_domain::TokenError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::hs256::{Hs256Key, MAC_LEN};

/// Decoded header and payload bytes up to this size stay on the stack; a
/// FastAPI Users payload is about 100 bytes, Portcullis' reset token under 300.
const STACK_SEGMENT: usize = 512;

/// The claims of a token whose MAC, header and registered claims passed
/// [`open`]: the members a [`TokenKind`](crate::TokenKind) may read, each
/// as its last occurrence in the payload. Their types are the reader's to
/// check, except where [`open`] already did (`sub` a string when present,
/// `exp` present; `exp`, `nbf`, `iat` non-negative numbers when present).
#[derive(Debug, Default)]
pub(crate) struct Claims {
    pub(crate) sub: Option<Value>,
    pub(crate) exp: Option<Value>,
    pub(crate) iat: Option<Value>,
    pub(crate) stamp: Option<Value>,
    pub(crate) password_fgpt: Option<Value>,
    pub(crate) email: Option<Value>,
    pub(crate) state: Option<Value>,
    pub(crate) nbf: Option<Value>,
    aud: Option<Aud>,
    iss: Option<Text>,
    jti: Option<Text>,
}

/// Checks `token`'s HS256 MAC under `key`, then its header, then parses its
/// payload, and returns the claims when every check josekit made passes:
///
/// - at most `max_len` bytes, exactly three `.`-separated segments, each
///   strict unpadded base64url;
/// - the third segment a 32-byte MAC equal (in constant time) to
///   HMAC-SHA-256 of the first two segments and the dot between them;
/// - the header a JSON object with `alg` exactly the string `HS256` (so
///   never `none`, no other case), `typ` a string when present (its value
///   is not judged), no `crit` at all, and every other parameter of the
///   type josekit requires (`kid`, `jku`, `x5u`, `cty`, `url` strings;
///   `x5t`, `x5t#S256`, `nonce` unpadded base64url; `x5c` an array of
///   base64; `jwk` a JWK object);
/// - the payload a JSON object whose `iss`, `sub` and `jti` are strings and
///   whose `exp`, `nbf` and `iat` are non-negative numbers when present, and
///   whose `aud` is a string or an array of strings naming `audience`.
///
/// The times against the clock are the caller's (`check_times` in
/// `codec.rs`), as is which claims a kind requires.
pub(crate) fn open(
    key: &Hs256Key,
    audience: &str,
    token: &str,
    max_len: usize,
) -> Result<Claims, TokenError> {
    if token.len() > max_len {
        return Err(TokenError::Invalid);
    }
    let (header, rest) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let (payload, signature) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    if signature.contains('.') {
        return Err(TokenError::Invalid);
    }
    let mut mac = [0_u8; MAC_LEN];
    // A segment that decodes to more than 32 bytes does not fit: refused,
    // as is one that decodes to fewer.
    match URL_SAFE_NO_PAD.decode_slice(signature, &mut mac) {
        Ok(MAC_LEN) => {}
        _ => return Err(TokenError::Invalid),
    }
    let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
    if !key.verifies(signed, &mac) {
        return Err(TokenError::Invalid);
    }

    let mut stack = [0_u8; STACK_SEGMENT];
    let header: Header = parse(header, &mut stack, HeaderSeed)?;
    header.check()?;
    parse(payload, &mut stack, PayloadSeed { audience })?.check()
}

/// Decodes a base64url `segment` (onto the stack when it is short) and
/// parses it with `seed` as `serde_json::from_slice` would: one value,
/// whitespace around it only.
fn parse<T, S>(segment: &str, stack: &mut [u8; STACK_SEGMENT], seed: S) -> Result<T, TokenError>
where
    S: for<'de> DeserializeSeed<'de, Value = T>,
{
    let heap;
    let bytes: &[u8] = if base64::decoded_len_estimate(segment.len()) <= STACK_SEGMENT {
        let len = URL_SAFE_NO_PAD
            .decode_slice(segment, stack)
            .map_err(|_| TokenError::Invalid)?;
        &stack[..len]
    } else {
        heap = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| TokenError::Invalid)?;
        &heap
    };
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = seed
        .deserialize(&mut json)
        .map_err(|_| TokenError::Invalid)?;
    json.end().map_err(|_| TokenError::Invalid)?;
    Ok(value)
}

/// What a member that must be a string turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// A string; `equal` says whether it was the one looked for.
    Str { equal: bool },
    /// Any other JSON value (fully parsed, then dropped).
    NotStr,
}

/// An `aud` claim, judged as it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aud {
    /// A string, or an array of nothing but strings; `named` says whether
    /// the audience looked for was among them.
    Strings { named: bool },
    /// Anything else, an array with any non-string element included.
    NotStrings,
}

// ---- header -----------------------------------------------------------------

/// A JWS header: `alg` and `typ` judged as parsed, any other parameter kept
/// for josekit's rules.
#[derive(Debug)]
struct Header {
    alg: Option<Text>,
    typ: Option<Text>,
    others: Map<String, Value>,
}

impl Header {
    fn check(self) -> Result<(), TokenError> {
        if self.alg != Some(Text::Str { equal: true })
            || self.typ == Some(Text::NotStr)
            // We understand no extension; josekit refused a non-empty one
            // and the codec an empty one.
            || self.others.contains_key("crit")
        {
            return Err(TokenError::Invalid);
        }
        if !self.others.is_empty() {
            // The parameters' types (`kid` a string, `x5c` base64, `jwk` a
            // JWK, …), by josekit's own rules; `alg` and `typ` are judged
            // above as it judged them (strings).
            JwsHeader::from_map(self.others).map_err(|_| TokenError::Invalid)?;
        }
        Ok(())
    }
}

/// Parses a [`Header`].
struct HeaderSeed;

impl<'de> DeserializeSeed<'de> for HeaderSeed {
    type Value = Header;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Header, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWS header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header {
            alg: None,
            typ: None,
            others: Map::new(),
        };
        while let Some(name) = map.next_key_seed(HeaderName)? {
            match name {
                HeaderField::Alg => header.alg = Some(map.next_value_seed(TextSeed("HS256"))?),
                HeaderField::Typ => header.typ = Some(map.next_value_seed(TextSeed(""))?),
                HeaderField::Other(name) => {
                    let value: Value = map.next_value()?;
                    header.others.insert(name, value);
                }
            }
        }
        Ok(header)
    }
}

enum HeaderField {
    Alg,
    Typ,
    Other(String),
}

/// A header parameter's name, unescaped.
struct HeaderName;

impl<'de> DeserializeSeed<'de> for HeaderName {
    type Value = HeaderField;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<HeaderField, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for HeaderName {
    type Value = HeaderField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header parameter name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<HeaderField, E> {
        Ok(match name {
            "alg" => HeaderField::Alg,
            "typ" => HeaderField::Typ,
            _ => HeaderField::Other(name.to_owned()),
        })
    }
}

// ---- payload ------------------------------------------------------------------

impl Claims {
    /// The checks josekit's `JwtPayload::from_map` made (the registered
    /// claims' types) and the audience check.
    fn check(self) -> Result<Self, TokenError> {
        if self.iss == Some(Text::NotStr)
            || self.jti == Some(Text::NotStr)
            || self.sub.as_ref().is_some_and(|sub| !sub.is_string())
            || self.aud != Some(Aud::Strings { named: true })
        {
            return Err(TokenError::Invalid);
        }
        for time in [&self.exp, &self.nbf, &self.iat].into_iter().flatten() {
            match time {
                Value::Number(n) if !is_negative(n) => {}
                _ => return Err(TokenError::Invalid),
            }
        }
        Ok(self)
    }
}

/// josekit's test for a negative NumericDate (so `-0.0` is not negative).
fn is_negative(n: &Number) -> bool {
    if let Some(i) = n.as_i64() {
        i < 0
    } else if let Some(f) = n.as_f64() {
        f < 0.0
    } else {
        false
    }
}

/// Parses [`Claims`], checking `aud` against `audience` on the way.
struct PayloadSeed<'a> {
    audience: &'a str,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Claims;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Claims, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let mut claims = Claims::default();
        while let Some(name) = map.next_key_seed(ClaimName)? {
            let slot = match name {
                ClaimField::Aud => {
                    claims.aud = Some(map.next_value_seed(AudSeed(self.audience))?);
                    continue;
                }
                ClaimField::Iss => {
                    claims.iss = Some(map.next_value_seed(TextSeed(""))?);
                    continue;
                }
                ClaimField::Jti => {
                    claims.jti = Some(map.next_value_seed(TextSeed(""))?);
                    continue;
                }
                ClaimField::Other => {
                    // Parsed in full (UTF-8, surrogates, numbers), then dropped.
                    map.next_value::<Value>()?;
                    continue;
                }
                ClaimField::Sub => &mut claims.sub,
                ClaimField::Exp => &mut claims.exp,
                ClaimField::Nbf => &mut claims.nbf,
                ClaimField::Iat => &mut claims.iat,
                ClaimField::Stamp => &mut claims.stamp,
                ClaimField::PasswordFgpt => &mut claims.password_fgpt,
                ClaimField::Email => &mut claims.email,
                ClaimField::State => &mut claims.state,
            };
            *slot = Some(map.next_value()?);
        }
        Ok(claims)
    }
}

enum ClaimField {
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Iss,
    Jti,
    Stamp,
    PasswordFgpt,
    Email,
    State,
    Other,
}

/// A claim's name, unescaped.
struct ClaimName;

impl<'de> DeserializeSeed<'de> for ClaimName {
    type Value = ClaimField;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ClaimField, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for ClaimName {
    type Value = ClaimField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<ClaimField, E> {
        Ok(match name {
            "sub" => ClaimField::Sub,
            "aud" => ClaimField::Aud,
            "exp" => ClaimField::Exp,
            "nbf" => ClaimField::Nbf,
            "iat" => ClaimField::Iat,
            "iss" => ClaimField::Iss,
            "jti" => ClaimField::Jti,
            "stamp" => ClaimField::Stamp,
            "password_fgpt" => ClaimField::PasswordFgpt,
            "email" => ClaimField::Email,
            "state" => ClaimField::State,
            _ => ClaimField::Other,
        })
    }
}

// ---- values judged as they are parsed ---------------------------------------

/// Parses any JSON value into a [`Text`]: whether it is a string, and
/// whether it equals the one given. Non-strings are parsed in full (as a
/// `Value` would be) and dropped.
#[derive(Clone, Copy)]
struct TextSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Str { equal: v == self.0 })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
        Ok(Text::NotStr)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
        Ok(Text::NotStr)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
        Ok(Text::NotStr)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
        Ok(Text::NotStr)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::NotStr)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
        drain_seq(seq).map(|()| Text::NotStr)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
        drain_map(map).map(|()| Text::NotStr)
    }
}

/// Parses an `aud` claim into an [`Aud`], looking for the audience given.
struct AudSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for AudSeed<'_> {
    type Value = Aud;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Aud, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AudSeed<'_> {
    type Value = Aud;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Aud, E> {
        Ok(Aud::Strings { named: v == self.0 })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Aud, A::Error> {
        let mut named = false;
        let mut all_strings = true;
        // Every element is read, also after a match or a non-string: the
        // rest must still be valid JSON.
        while let Some(element) = seq.next_element_seed(TextSeed(self.0))? {
            match element {
                Text::Str { equal } => named |= equal,
                Text::NotStr => all_strings = false,
            }
        }
        Ok(if all_strings {
            Aud::Strings { named }
        } else {
            Aud::NotStrings
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Aud, E> {
        Ok(Aud::NotStrings)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Aud, E> {
        Ok(Aud::NotStrings)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Aud, E> {
        Ok(Aud::NotStrings)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Aud, E> {
        Ok(Aud::NotStrings)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Aud, E> {
        Ok(Aud::NotStrings)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Aud, A::Error> {
        drain_map(map).map(|()| Aud::NotStrings)
    }
}

/// Parses every remaining element as a [`Value`] (so exactly as strictly)
/// and drops it.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

/// Parses every remaining member as a `String` name and a [`Value`] (as a
/// `Value` object would be parsed) and drops it.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<String, Value>()?.is_some() {}
    Ok(())
}
