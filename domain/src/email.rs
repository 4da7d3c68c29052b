use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// An e-mail address that is deliverable on the public internet, normalised
/// as FastAPI Users (through `email-validator`) normalises it: surrounding
/// white space stripped, the domain lowercased, the local part kept as given
/// (in Unicode NFC form).
///
/// Two addresses are the same account when their [`EmailAddress::key`]s are
/// equal: matching is case-insensitive everywhere.
///
/// ```
/// use portcullis_domain::EmailAddress;
/// let e = EmailAddress::parse("  Mixed.Case@EXAMPLE.COM ").unwrap();
/// assert_eq!(e.as_str(), "Mixed.Case@example.com");
/// assert_eq!(e.key(), "mixed.case@example.com");
/// assert!(EmailAddress::parse("ann@localhost").is_err());
/// assert!(EmailAddress::parse("ann@site.test").is_err());
/// assert!(EmailAddress::parse("not an address").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why a text is not an acceptable e-mail address, in the words of Python's
/// `email-validator` (which FastAPI Users' clients see in 422 answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(pub String);

const MAX_INPUT_CHARS: usize = 2048;
const EMAIL_MAX_LENGTH: usize = 254;
const LOCAL_PART_MAX_LENGTH: usize = 64;
const DOMAIN_MAX_LENGTH: usize = 253;
const DNS_LABEL_LENGTH_LIMIT: usize = 63;
/// Special-use and reserved names no public address can live under
/// (RFC 6761, 6762, 7686 and `arpa`).
const SPECIAL_USE_DOMAINS: [&str; 6] = ["arpa", "invalid", "local", "localhost", "onion", "test"];
const ATEXT_SPECIALS: &str = "_!#$%&'*+-/=?^`{|}~";

fn invalid(msg: impl Into<String>) -> InvalidEmail {
    InvalidEmail(msg.into())
}

fn too_many(n: usize) -> String {
    if n == 1 {
        "(1 character too many)".to_owned()
    } else {
        format!("({n} characters too many)")
    }
}

fn list_chars(mut chars: Vec<char>) -> String {
    chars.sort_unstable();
    chars.dedup();
    chars
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl EmailAddress {
    /// Validates and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        if raw.chars().count() > MAX_INPUT_CHARS {
            return Err(invalid(format!(
                "Length must not exceed {MAX_INPUT_CHARS} characters"
            )));
        }
        let address = strip_display_name(raw).trim();
        let Some(at) = address.rfind('@') else {
            return Err(invalid("An email address must have an @-sign."));
        };
        let (local, domain) = (&address[..at], &address[at + 1..]);
        let local = validate_local_part(local)?;
        let domain = validate_domain(domain)?;
        let email = format!("{local}@{domain}");
        let len = email.chars().count();
        if len > EMAIL_MAX_LENGTH {
            return Err(invalid(format!(
                "The email address is too long {}.",
                too_many(len - EMAIL_MAX_LENGTH)
            )));
        }
        Ok(Self(email))
    }

    /// Wraps an address read back from trusted storage, where it was stored
    /// after [`EmailAddress::parse`]; it is not checked again.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the address: the whole address
    /// lowercased. Stores index and compare this.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// Whether two addresses name the same account.
    pub fn same_account(&self, other: &EmailAddress) -> bool {
        self.key() == other.key()
    }
}

/// Accepts `Display Name <address>` as pydantic does, keeping the address.
fn strip_display_name(raw: &str) -> &str {
    let t = raw.trim_matches(' ');
    if let (Some(open), true) = (t.find('<'), t.ends_with('>')) {
        let name = &t[..open];
        if name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ' ')
        {
            return &t[open + 1..t.len() - 1];
        }
    }
    raw
}

fn check_dots(label: &str, start: &str, end: &str) -> Result<(), InvalidEmail> {
    if label.ends_with('.') {
        return Err(invalid(end.replace("{}", "period")));
    }
    if label.starts_with('.') {
        return Err(invalid(start.replace("{}", "period")));
    }
    if label.contains("..") {
        return Err(invalid(
            "An email address cannot have two periods in a row.",
        ));
    }
    Ok(())
}

fn validate_local_part(local: &str) -> Result<String, InvalidEmail> {
    if local.is_empty() {
        return Err(invalid("There must be something before the @-sign."));
    }
    let local: String = local.nfc().collect();
    let len = local.chars().count();
    if len > LOCAL_PART_MAX_LENGTH {
        return Err(invalid(format!(
            "The email address is too long before the @-sign {}.",
            too_many(len - LOCAL_PART_MAX_LENGTH)
        )));
    }
    let bad: Vec<char> = local
        .chars()
        .filter(|&c| {
            let atext = c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c) || c == '.';
            let intl = !c.is_ascii() && !c.is_control() && !c.is_whitespace();
            !(atext || intl)
        })
        .collect();
    if !bad.is_empty() {
        return Err(invalid(format!(
            "The email address contains invalid characters before the @-sign: {}.",
            list_chars(bad)
        )));
    }
    check_dots(
        &local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
    )?;
    Ok(local)
}

fn validate_domain(domain: &str) -> Result<String, InvalidEmail> {
    if domain.is_empty() {
        return Err(invalid("There must be something after the @-sign."));
    }
    let domain: String = domain.nfc().collect::<String>().to_lowercase();
    let bad: Vec<char> = domain
        .chars()
        .filter(|&c| {
            !(c.is_ascii_alphanumeric()
                || c == '-'
                || c == '.'
                || (!c.is_ascii() && c.is_alphanumeric()))
        })
        .collect();
    if !bad.is_empty() {
        return Err(invalid(format!(
            "The part after the @-sign contains invalid characters: {}.",
            list_chars(bad)
        )));
    }
    check_dots(
        &domain,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
    )?;
    if domain.ends_with('-') {
        return Err(invalid("An email address cannot end with a hyphen."));
    }
    if domain.starts_with('-') {
        return Err(invalid(
            "An email address cannot have a hyphen immediately after the @-sign.",
        ));
    }
    if domain.contains(".-") || domain.contains("-.") {
        return Err(invalid(
            "An email address cannot have a period and a hyphen next to each other.",
        ));
    }
    if domain.len() > DOMAIN_MAX_LENGTH {
        return Err(invalid(format!(
            "The email address is too long after the @-sign {}.",
            too_many(domain.len() - DOMAIN_MAX_LENGTH)
        )));
    }
    if let Some(label) = domain.split('.').find(|l| l.len() > DNS_LABEL_LENGTH_LIMIT) {
        return Err(invalid(format!(
            "After the @-sign, periods cannot be separated by so many characters {}.",
            too_many(label.len() - DNS_LABEL_LENGTH_LIMIT)
        )));
    }
    if !domain.contains('.') {
        return Err(invalid(
            "The part after the @-sign is not valid. It should have a period.",
        ));
    }
    if !domain.chars().last().is_some_and(char::is_alphabetic) {
        return Err(invalid(
            "The part after the @-sign is not valid. It is not within a valid top-level domain.",
        ));
    }
    if SPECIAL_USE_DOMAINS
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    {
        return Err(invalid(
            "The part after the @-sign is a special-use or reserved name that cannot be used with email.",
        ));
    }
    Ok(domain)
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(raw: &str) -> String {
        EmailAddress::parse(raw).unwrap_err().0
    }

    #[test]
    fn normalises_domain_case_and_keeps_local_case() {
        let e = EmailAddress::parse("Mixed.Case@EXAMPLE.COM").unwrap();
        assert_eq!(e.as_str(), "Mixed.Case@example.com");
    }

    #[test]
    fn accepts_display_name_form_and_non_ascii_local_part() {
        assert_eq!(
            EmailAddress::parse("Ann Example <ann@example.org>")
                .unwrap()
                .as_str(),
            "ann@example.org"
        );
        assert_eq!(
            EmailAddress::parse("Jöhn.Dœ@Exämple.COM").unwrap().as_str(),
            "Jöhn.Dœ@exämple.com"
        );
    }

    #[test]
    fn key_is_case_insensitive_including_non_ascii() {
        let a = EmailAddress::parse("ÉLODIE@example.com").unwrap();
        let b = EmailAddress::parse("élodie@EXAMPLE.com").unwrap();
        assert!(a.same_account(&b));
    }

    #[test]
    fn rejects_what_email_validator_rejects() {
        assert_eq!(err("foo"), "An email address must have an @-sign.");
        assert_eq!(
            err("foo@localhost"),
            "The part after the @-sign is not valid. It should have a period."
        );
        assert_eq!(
            err("foo@bar.test"),
            "The part after the @-sign is a special-use or reserved name that cannot be used with email."
        );
        for bad in [
            "@example.com",
            "a@",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a@example-.com",
            "a@example.com.",
            "a@example.123",
            "a@x.local",
            "a@x.invalid",
            "a@x.onion",
            "a@1.in-addr.arpa",
            "a@b@example.com",
            "a\u{0}b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn enforces_lengths() {
        let local = "a".repeat(65);
        assert!(err(&format!("{local}@example.com")).contains("before the @-sign"));
        let label = "b".repeat(64);
        assert!(err(&format!("a@{label}.com")).contains("so many characters"));
        let ok = format!("{}@{}.com", "a".repeat(64), "b".repeat(63));
        assert!(EmailAddress::parse(&ok).is_ok());
    }
}
