//! `LOG_FORMAT`: how the `portcullis` binary writes its log.

use std::fmt;
use std::str::FromStr;

/// How log lines are written (`LOG_FORMAT`), to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// `text` (the default): human-readable lines, as `tracing-subscriber`'s
    /// `fmt` writes them.
    #[default]
    Text,
    /// `json`: one JSON object a line, with `timestamp`, `level`, `target`,
    /// the event's fields (`message` among them) at the top level, and the
    /// spans it happened in (`span`, `spans`: the request's `request_id`
    /// and the use case's `user_id`).
    Json,
}

impl LogFormat {
    /// The setting's value: `text` or `json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `LOG_FORMAT` that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected text or json")]
pub struct InvalidLogFormat;

impl FromStr for LogFormat {
    type Err = InvalidLogFormat;

    /// `text` or `json`, in any letter case, surrounding blanks ignored.
    ///
    /// ```
    /// use portcullis::LogFormat;
    ///
    /// assert_eq!(" JSON ".parse(), Ok(LogFormat::Json));
    /// assert!("yaml".parse::<LogFormat>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(InvalidLogFormat),
        }
    }
}
