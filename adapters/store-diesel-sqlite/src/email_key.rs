//! Case-insensitive e-mail matching on top of SQLite's ASCII-only `lower()`.
//!
//! Let `L(s)` be SQLite's `lower(s)` (ASCII letters folded, every other
//! character kept) and `K(s)` the domain's [`EmailAddress::key`]
//! (`str::to_lowercase`, full Unicode).
//!
//! * For an all-ASCII address, `K = L`, so the unique index on `lower(email)`
//!   both finds it and decides clashes, atomically, in the database.
//! * No non-ASCII address has an all-ASCII key. Among all of Unicode, only
//!   two characters lowercase to something containing ASCII: U+212A KELVIN
//!   SIGN (to `k`) and U+0130 `İ` (to `i` + U+0307). Addresses are in NFC
//!   ([`EmailAddress::parse`] and Python's `email-validator` both normalise),
//!   and NFC turns the Kelvin sign into `K`; `İ` leaves a non-ASCII U+0307 in
//!   the key. So an ASCII and a non-ASCII address never clash, and the index
//!   alone is right for every clash involving an ASCII address.
//! * A non-ASCII address is matched by `K`, computed by a function this crate
//!   registers on its connections (`portcullis_email_key`), on only those
//!   rows whose `lower(email)` starts with one of a few prefixes — index range
//!   scans. The prefixes are every way `L` can spell the key's beginning:
//!   for each key character, the characters whose lowercase it is (`é` ←
//!   `é`, `É`; `σ` ← `σ`, `Σ`), as `L` leaves them (ASCII folded), until
//!   there would be more than [`MAX_PREFIXES`]. Creates and updates of such
//!   addresses check for a clash and write inside one `BEGIN IMMEDIATE`
//!   transaction, which holds SQLite's single write lock, so the check and
//!   the write are atomic with respect to every other writer.
//!
//! [`EmailAddress::key`]: portcullis_domain::EmailAddress::key
//! [`EmailAddress::parse`]: portcullis_domain::EmailAddress::parse

use std::collections::HashMap;
use std::sync::OnceLock;

/// At most this many index ranges per lookup.
pub(crate) const MAX_PREFIXES: usize = 16;

const COMBINING_DOT_ABOVE: char = '\u{307}';

/// Whether `address` needs the Unicode path (it has a non-ASCII character).
pub(crate) fn needs_unicode_match(address: &str) -> bool {
    !address.is_ascii()
}

/// Ranges `[low, high)` of `lower(email)` that together hold every stored
/// address whose key is `key`; empty when the key's first character allows
/// no prefix (scan the table).
///
/// Why nothing is missed: walk any `s` with `K(s) = key` one character `c`
/// at a time. `str::to_lowercase` maps `c` to one character `k` (the key's
/// next), except `İ`, which becomes `i` + U+0307 — where the walk stops.
/// So `c` is one of `k`'s [`preimages`], and `L(s)` has `L(c)` there; the
/// prefixes are all the combinations of those.
pub(crate) fn lower_email_ranges(key: &str) -> Vec<(String, String)> {
    let mut prefixes = vec![String::new()];
    let mut chars = key.chars().peekable();
    while let Some(k) = chars.next() {
        if k == 'i' && chars.peek() == Some(&COMBINING_DOT_ABOVE) {
            break; // `i` + U+0307 may be one `İ` in `s`
        }
        let mut spellings: Vec<char> = preimages(k).map(|c| c.to_ascii_lowercase()).collect();
        spellings.sort_unstable();
        spellings.dedup();
        if spellings.is_empty() || prefixes.len() * spellings.len() > MAX_PREFIXES {
            break;
        }
        prefixes = prefixes
            .iter()
            .flat_map(|p| spellings.iter().map(move |c| format!("{p}{c}")))
            .collect();
    }
    prefixes
        .into_iter()
        .filter(|p| !p.is_empty())
        .filter_map(|low| successor(&low).map(|high| (low, high)))
        .collect()
}

/// The least string greater than every string that starts with `prefix`:
/// its last character's code point plus one (UTF-8 byte order is code point
/// order, which is how SQLite's BINARY collation compares).
fn successor(prefix: &str) -> Option<String> {
    let mut chars = prefix.chars();
    let last = chars.next_back()? as u32;
    let next = (last + 1..=0x10_ffff).find_map(char::from_u32)?;
    Some(format!("{}{next}", chars.as_str()))
}

/// Every character whose lowercase, inside `str::to_lowercase`, is `k`.
fn preimages(k: char) -> impl Iterator<Item = char> {
    let itself = k.to_lowercase().eq([k]).then_some(k);
    let others = lowercase_preimages().get(&k).map_or(&[][..], Vec::as_slice);
    itself.into_iter().chain(others.iter().copied())
}

/// Lowercase character → the other characters that lowercase to it alone.
fn lowercase_preimages() -> &'static HashMap<char, Vec<char>> {
    static TABLE: OnceLock<HashMap<char, Vec<char>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: HashMap<char, Vec<char>> = HashMap::new();
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) if l != c => table.entry(l).or_default().push(c),
                _ => {}
            }
        }
        // The one context rule `str::to_lowercase` applies: a word-final
        // capital sigma becomes final sigma.
        table.entry('ς').or_default().push('Σ');
        table
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's `lower()`.
    fn sqlite_lower(s: &str) -> String {
        s.chars().map(|c| c.to_ascii_lowercase()).collect()
    }

    fn covered(stored: &str, lookup: &str) -> bool {
        let key = lookup.to_lowercase();
        assert_eq!(stored.to_lowercase(), key, "test data: same account");
        let ranges = lower_email_ranges(&key);
        let l = sqlite_lower(stored);
        ranges.is_empty()
            || ranges
                .iter()
                .any(|(low, high)| l.as_str() >= low.as_str() && l.as_str() < high.as_str())
    }

    #[test]
    fn the_ranges_hold_every_spelling_of_the_account() {
        for (stored, lookup) in [
            ("Jöhn@example.com", "JÖHN@example.com"),
            ("JÖHN@example.com", "jöhn@example.com"),
            ("Élodie@example.com", "élodie@example.com"),
            ("élodie@example.com", "ÉLODIE@example.com"),
            ("Ann.Strøm@example.com", "ann.STRØM@example.com"),
            ("ΣΩΚΡΆΤΗΣ@example.com", "Σωκράτης@example.com"),
            ("Дмитрий@example.com", "ДМИТРИЙ@example.com"),
            ("ǅemal@example.com", "ǄEMAL@example.com"),
            ("ẞtraße@example.com", "ßtraße@example.com"),
            ("\u{212a}öln@example.com", "kÖln@example.com"),
            ("İpek@example.com", "i\u{307}pek@example.com"),
            ("i\u{307}pek@example.com", "İpek@example.com"),
            ("Yİğit@example.com", "yi\u{307}ğit@example.com"),
            ("zI\u{307}x@example.com", "zİx@example.com"),
            ("~ö@example.com", "~Ö@example.com"),
            ("用户@例子.广告", "用户@例子.广告"),
        ] {
            assert!(covered(stored, lookup), "{stored} / {lookup}");
        }
    }

    #[test]
    fn the_ranges_are_narrow() {
        let r = lower_email_ranges("jöhn@example.com");
        assert_eq!(
            r,
            [
                ("jÖhn@example.com".to_owned(), "jÖhn@example.con".to_owned()),
                ("jöhn@example.com".to_owned(), "jöhn@example.con".to_owned())
            ]
        );
        let r = lower_email_ranges("élodie@example.com");
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            r.iter().any(|(low, _)| low == "Élodie@example.com"),
            "{r:?}"
        );
        let r = lower_email_ranges("дмитрий@example.com");
        assert_eq!(r.len(), 16, "{r:?}");
        assert!(r.iter().all(|(low, _)| low.chars().count() == 4), "{r:?}");
        assert_eq!(lower_email_ranges("i\u{307}pek@example.com"), []);
        let r = lower_email_ranges("yi\u{307}ğit@example.com");
        assert_eq!(r, [("y".to_owned(), "z".to_owned())]);
    }

    #[test]
    fn successor_is_the_next_code_point() {
        assert_eq!(successor("ab~").as_deref(), Some("ab\u{7f}"));
        assert_eq!(successor("é").as_deref(), Some("ê"));
        assert_eq!(successor("\u{d7ff}").as_deref(), Some("\u{e000}"));
        assert_eq!(successor("\u{10ffff}"), None);
    }

    #[test]
    fn only_two_characters_lowercase_to_ascii() {
        let odd: Vec<char> = (0x80..=0x10_ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(odd, ['\u{130}', '\u{212a}']);
        // and NFC removes the Kelvin sign, as EmailAddress::parse applies it
        let parsed = portcullis_domain::EmailAddress::parse("\u{212a}im@example.com").unwrap();
        assert_eq!(parsed.as_str(), "Kim@example.com");
    }

    #[test]
    fn only_capital_i_with_dot_lowercases_to_more_than_one_character() {
        let odd: Vec<char> = (0..=0x10_ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().count() != 1)
            .collect();
        assert_eq!(odd, ['\u{130}']);
    }
}
