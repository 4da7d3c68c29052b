//! JSON strings written as Python's `json.dumps` writes them: the one piece
//! of the compact form that must stay hand-written for the bytes to be
//! PyJWT's (serde_json writes non-ASCII as raw UTF-8, never as `\uXXXX`).

use std::fmt::Write as _;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
