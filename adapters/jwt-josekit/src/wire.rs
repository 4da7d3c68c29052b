//! The small encodings the compact JWS form needs, written here so that the
//! bytes are exactly PyJWT's and decoding is strict.

use std::fmt::Write as _;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the unpadded base64url form of `input` (RFC 4648 §5) to `out`.
pub(crate) fn b64url_encode_into(input: &[u8], out: &mut String) {
    out.reserve(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
}

fn b64url_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes unpadded base64url strictly: only the URL-safe alphabet, no
/// padding, no white space, and the unused trailing bits must be zero (so
/// each byte string has exactly one accepted spelling).
pub(crate) fn b64url_decode(input: &str) -> Option<Vec<u8>> {
    let input = input.as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &c in input {
        acc = (acc << 6) | b64url_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation intended: the top bits were already emitted.
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// Appends `s` as a JSON string written the way Python's `json.dumps` writes
/// it by default (`ensure_ascii=True`): printable ASCII as is, `"` `\` and
/// the usual control characters as short escapes, everything else as
/// lowercase `\uXXXX` (UTF-16, so surrogate pairs beyond the BMP).
pub(crate) fn push_python_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0_u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(input: &[u8]) -> String {
        let mut s = String::new();
        b64url_encode_into(input, &mut s);
        s
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors_and_round_trips() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in vectors {
            assert_eq!(encode(raw), text);
            assert_eq!(b64url_decode(text).as_deref(), Some(raw));
        }
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(!text.contains(['+', '/', '=']));
        assert_eq!(b64url_decode(&text), Some(all));
    }

    #[test]
    fn base64url_decoding_is_strict() {
        for bad in [
            "Zg==", "Zm9v Yg", "Zm9v+g", "Zm9v/g", "Z", "Zm9vY", "Zh", "Zm9",
        ] {
            // "Zh" and "Zm9" carry non-zero unused bits (non-canonical).
            assert_eq!(b64url_decode(bad), None, "{bad:?}");
        }
        assert_eq!(b64url_decode("Zm8").as_deref(), Some(&b"fo"[..]));
    }

    #[test]
    fn json_strings_are_escaped_like_python_json_dumps() {
        // json.dumps("a\"b\\c\n\r\t\b\f\x00\x1f\x7f é€😀 ~/", separators=(",", ":"))
        let mut s = String::new();
        push_python_json_str(&mut s, "a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} é€😀 ~/");
        assert_eq!(
            s,
            r#""a\"b\\c\n\r\t\b\f\u0000\u001f\u007f \u00e9\u20ac\ud83d\ude00 ~/""#
        );
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} é€😀 ~/");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
