//! The cookie transport's settings: FastAPI Users' `CookieTransport` cookie
//! (`COOKIE_NAME`, `COOKIE_SECURE`, `COOKIE_DOMAIN`, the access token
//! lifetime as `Max-Age`) and the origins whose pages may send
//! cookie-authenticated unsafe requests (`FRONTEND_URL`'s and
//! `CORS_ORIGINS`). Plain data: the HTTP adapter writes the cookie and
//! applies the rule.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// FastAPI Users' default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "fastapiusersauth";

/// The session cookie, as FastAPI Users' `CookieTransport` sets it:
/// `HttpOnly`, `Path=/`, `SameSite=lax`, `Max-Age` the access token
/// lifetime, `Secure` unless turned off, `Domain` when set.
///
/// ```
/// use std::time::Duration;
/// use portcullis_application::SessionCookie;
///
/// let cookie = SessionCookie::default();
/// assert_eq!(cookie.name(), "fastapiusersauth");
/// assert!(cookie.secure());
/// let cookie = SessionCookie::new("sid", false, Some("example.com".into()), Duration::from_secs(60)).unwrap();
/// assert_eq!(cookie.domain(), Some("example.com"));
/// assert!(SessionCookie::new("a b", true, None, Duration::from_secs(60)).is_err());
/// assert!(SessionCookie::new("sid", true, Some("a;b".into()), Duration::from_secs(60)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    name: String,
    secure: bool,
    domain: Option<String>,
    max_age: Duration,
}

/// A cookie setting that cannot be sent in a `Set-Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCookieSetting {
    /// The name is empty or holds a character RFC 6265 does not allow in a
    /// cookie name (separators, spaces, controls).
    #[error("{0:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)")]
    Name(String),
    /// The domain is empty or holds a space, `;`, `,` or a control.
    #[error("{0:?} is not a cookie domain (a host name such as example.com)")]
    Domain(String),
}

impl Default for SessionCookie {
    /// `fastapiusersauth`, `Secure`, no `Domain`, one hour.
    fn default() -> Self {
        Self {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            secure: true,
            domain: None,
            max_age: Duration::from_secs(3600),
        }
    }
}

impl SessionCookie {
    /// A cookie of this name, `Secure` or not, for `domain` (`None`: the
    /// host that set it), living `max_age` (the access token lifetime).
    pub fn new(
        name: impl Into<String>,
        secure: bool,
        domain: Option<String>,
        max_age: Duration,
    ) -> Result<Self, InvalidCookieSetting> {
        let name = name.into();
        if !Self::is_valid_name(&name) {
            return Err(InvalidCookieSetting::Name(name));
        }
        if let Some(domain) = &domain
            && !Self::is_valid_domain(domain)
        {
            return Err(InvalidCookieSetting::Domain(domain.clone()));
        }
        Ok(Self {
            name,
            secure,
            domain,
            max_age,
        })
    }

    /// Whether `name` is an RFC 6265 cookie name (an RFC 7230 token).
    pub fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    }

    /// Whether `domain` can be a `Domain` attribute.
    pub fn is_valid_domain(domain: &str) -> bool {
        !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the cookie is `Secure` (sent over HTTPS only).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The `Domain` attribute, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The `Max-Age`: the access token lifetime.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}

/// The origins (`scheme://host[:port]`) whose pages may send
/// cookie-authenticated `POST`, `PATCH` and `DELETE` requests, besides the
/// API's own: `FRONTEND_URL`'s and those of `CORS_ORIGINS`. Kept as
/// browsers serialise an `Origin` header (lowercase, no default port).
///
/// ```
/// use portcullis_application::AllowedOrigins;
///
/// let origins: AllowedOrigins = "https://app.example.com, http://localhost:5173/".parse().unwrap();
/// assert!(origins.allows("https://APP.example.com:443"));
/// assert!(origins.allows("http://localhost:5173"));
/// assert!(!origins.allows("http://app.example.com"));
/// assert!(!origins.allows("null"));
/// assert!("https://app.example.com/login".parse::<AllowedOrigins>().is_err());
/// assert!("".parse::<AllowedOrigins>().unwrap().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    origins: Vec<String>,
}

/// An entry of `CORS_ORIGINS` that is no origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not an origin (scheme://host[:port], e.g. https://app.example.com): {reason}"
)]
pub struct InvalidOrigin {
    /// The entry as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AllowedOrigins {
    /// No origin but the API's own.
    pub fn none() -> Self {
        Self::default()
    }

    /// The same origins and `origin` (as [`origin_of`] serialises it).
    pub fn with(mut self, origin: String) -> Self {
        if !self.origins.contains(&origin) {
            self.origins.push(origin);
        }
        self
    }

    /// Whether an `Origin` header value is one of these origins.
    pub fn allows(&self, origin: &str) -> bool {
        origin_of(origin).is_ok_and(|o| self.origins.contains(&o))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The origins, serialised.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }
}

impl FromStr for AllowedOrigins {
    type Err = InvalidOrigin;

    /// A comma list of origins; a path other than `/`, a query or a
    /// fragment is refused (an origin has none).
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut origins = Self::none();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = |reason| InvalidOrigin {
                value: entry.to_owned(),
                reason,
            };
            let url = url::Url::parse(entry).map_err(|_| invalid("not a URL"))?;
            if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                return Err(invalid("an origin has no path, query or fragment"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid("an origin has no user name or password"));
            }
            origins = origins.with(origin_of(entry).map_err(invalid)?);
        }
        Ok(origins)
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origins.join(", "))
    }
}

/// The origin of an `http`/`https` URL as a browser writes it in an `Origin`
/// header: `scheme://host[:port]`, lowercase, without the default port.
///
/// ```
/// use portcullis_application::origin_of;
///
/// assert_eq!(origin_of("HTTPS://App.Example.com:443/reset?x=1").unwrap(), "https://app.example.com");
/// assert_eq!(origin_of("http://localhost:3000").unwrap(), "http://localhost:3000");
/// assert!(origin_of("null").is_err());
/// assert!(origin_of("file:///etc").is_err());
/// ```
pub fn origin_of(url: &str) -> Result<String, &'static str> {
    let url = url::Url::parse(url.trim()).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https origins are allowed");
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err("an opaque origin"),
    }
}
