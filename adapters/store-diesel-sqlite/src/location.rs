//! Where the database lives: parsing `sqlite://…` URLs and plain paths.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::SqliteStoreError;

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A private in-memory database (one connection, lost when the store is
    /// dropped).
    Memory,
    /// A database file; created if missing when the store is opened (not
    /// by any later connection), its folder must exist.
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str(":memory:"),
            Location::File(path) => fmt::Display::fmt(&path.display(), f),
        }
    }
}

const MEMORY: &str = ":memory:";

impl Location {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`,
    /// `sqlite://:memory:`, `:memory:` or a plain path.
    ///
    /// `PATH` is taken literally (no percent-decoding) and may be relative
    /// (`sqlite://portcullis.db`, `sqlite://data/users.db`) or absolute
    /// (`sqlite:///var/lib/portcullis/users.db`).
    pub(crate) fn parse(url: &str) -> Result<Self, SqliteStoreError> {
        let invalid = |reason: &str| SqliteStoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        let rest = match split_scheme(trimmed) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sqlite") => {
                rest.strip_prefix("//").unwrap_or(rest)
            }
            Some((scheme, _)) => {
                return Err(invalid(&format!(
                    "scheme `{scheme}` is not SQLite; expected sqlite://PATH"
                )));
            }
            None => trimmed,
        };
        if rest.is_empty() {
            return Err(invalid(
                "no database path; expected sqlite://PATH (e.g. sqlite://portcullis.db)",
            ));
        }
        if rest == MEMORY {
            return Ok(Location::Memory);
        }
        if rest.contains('?') {
            return Err(invalid(
                "query parameters are not supported; give only the path (sqlite://PATH)",
            ));
        }
        Ok(Location::File(PathBuf::from(rest)))
    }

    /// The string handed to `sqlite3_open_v2` (which Diesel calls with
    /// `SQLITE_OPEN_URI`): a path that cannot be mistaken for a `file:` URI.
    pub(crate) fn open_string(&self) -> String {
        match self {
            Location::Memory => MEMORY.to_owned(),
            Location::File(path) => {
                let text = path.to_string_lossy().into_owned();
                if text.starts_with("file:") {
                    format!("./{text}")
                } else {
                    text
                }
            }
        }
    }

    /// The string every connection after the first opens: for a file, a
    /// `file:` URI of its absolute path with `mode=rw`, so that once the
    /// store is open (the first connection created the file if it was
    /// missing) no connection creates it again. A database removed or moved
    /// under a running server then fails to open (the store answers
    /// `Unavailable`) rather than being replaced by an empty file at its
    /// path. Absolute, so that every connection opens the same file whatever
    /// the process' working folder has become.
    pub(crate) fn reopen_string(&self) -> String {
        match self {
            Location::Memory => MEMORY.to_owned(),
            Location::File(path) => {
                let path = absolute(path);
                let mut uri = String::from("file://");
                for &byte in path.as_os_str().as_encoded_bytes() {
                    if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
                        uri.push(char::from(byte));
                    } else {
                        uri.push_str(&format!("%{byte:02X}"));
                    }
                }
                uri.push_str("?mode=rw");
                uri
            }
        }
    }

    /// Refuses, with a plain message, what SQLite would refuse obscurely: a
    /// folder that does not exist, a path that is a folder.
    pub(crate) fn check(&self) -> Result<(), SqliteStoreError> {
        let Location::File(path) = self else {
            return Ok(());
        };
        let open_error = |reason: String| SqliteStoreError::Open {
            location: self.to_string(),
            reason,
        };
        if path.is_dir() {
            return Err(open_error("this is a folder, not a database file".into()));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent.filter(|p| !p.is_dir()) {
            return Err(open_error(format!(
                "folder {} does not exist (create it first; the database file itself is created \
                 when missing)",
                absolute(parent).display()
            )));
        }
        Ok(())
    }
}

/// `scheme` and the rest, if `text` starts with a URL scheme (letters, digits,
/// `+`, `-`, `.`, then `:`). A Windows drive letter (`C:\…`) is not a scheme.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then(|| (scheme, &text[colon + 1..]))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> Location {
        Location::File(PathBuf::from(p))
    }

    #[test]
    fn parses_urls_and_paths() {
        assert_eq!(
            Location::parse("sqlite://portcullis.db").unwrap(),
            file("portcullis.db")
        );
        assert_eq!(
            Location::parse("sqlite://data/users.db").unwrap(),
            file("data/users.db")
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/x.db").unwrap(),
            file("/var/lib/x.db")
        );
        assert_eq!(Location::parse("SQLITE:./x.db").unwrap(), file("./x.db"));
        assert_eq!(Location::parse("users.db").unwrap(), file("users.db"));
        assert_eq!(
            Location::parse("/abs/users.db").unwrap(),
            file("/abs/users.db")
        );
        for memory in ["sqlite::memory:", "sqlite://:memory:", ":memory:"] {
            assert_eq!(
                Location::parse(memory).unwrap(),
                Location::Memory,
                "{memory}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_open() {
        for bad in [
            "sqlite://",
            "sqlite:",
            "",
            "postgres://x/y",
            "memory://",
            "sqlite://a.db?mode=ro",
        ] {
            let err = Location::parse(bad).unwrap_err();
            assert!(
                matches!(err, SqliteStoreError::InvalidUrl { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_path_looking_like_a_uri_stays_a_path() {
        assert_eq!(file("file:x.db").open_string(), "./file:x.db");
        assert_eq!(file("/tmp/x.db").open_string(), "/tmp/x.db");
    }

    #[test]
    fn later_connections_open_an_absolute_uri_that_never_creates() {
        assert_eq!(
            file("/tmp/a b?#%é&=.db").reopen_string(),
            "file:///tmp/a%20b%3F%23%25%C3%A9%26%3D.db?mode=rw"
        );
        assert_eq!(
            file("file:x.db").reopen_string(),
            format!(
                "file://{}/file%3Ax.db?mode=rw",
                std::env::current_dir().unwrap().display()
            )
        );
        assert_eq!(Location::Memory.reopen_string(), ":memory:");
    }

    #[test]
    fn missing_folder_is_named() {
        let err = file("/no/such/folder/users.db").check().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/no/such/folder") && text.contains("does not exist"),
            "{text}"
        );
        let dir = std::env::temp_dir();
        let err = Location::File(dir).check().unwrap_err();
        assert!(err.to_string().contains("folder"), "{err}");
    }
}
