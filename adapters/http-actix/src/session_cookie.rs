//! The `Set-Cookie` headers of the cookie transport, byte for byte as
//! FastAPI Users (Starlette) sends them: attributes in alphabetical order,
//! `SameSite=lax` in lower case, and the clearing form `name=""` with
//! `Max-Age=0` (recorded from the real FastAPI Users in
//! `tests/fixtures/fastapi_users_cookie_transport.json`). Written by hand
//! because a cookie crate writes its own order and casing.

use portcullis_application::SessionCookie;

/// `Set-Cookie` that gives the browser `token` for the access token
/// lifetime:
/// `name=token; [Domain=d; ]HttpOnly; Max-Age=n; Path=/; SameSite=lax[; Secure]`.
pub(crate) fn set_cookie(cookie: &SessionCookie, token: &str) -> String {
    header(cookie, token, cookie.max_age().as_secs())
}

/// `Set-Cookie` that makes the browser drop the cookie:
/// `name=""; [Domain=d; ]HttpOnly; Max-Age=0; Path=/; SameSite=lax[; Secure]`.
pub(crate) fn clear_cookie(cookie: &SessionCookie) -> String {
    header(cookie, "\"\"", 0)
}

fn header(cookie: &SessionCookie, value: &str, max_age: u64) -> String {
    let mut out = format!("{}={value}; ", cookie.name());
    if let Some(domain) = cookie.domain() {
        out.push_str(&format!("Domain={domain}; "));
    }
    out.push_str(&format!(
        "HttpOnly; Max-Age={max_age}; Path=/; SameSite=lax"
    ));
    if cookie.secure() {
        out.push_str("; Secure");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn writes_what_fastapi_users_writes() {
        let cookie = SessionCookie::default();
        assert_eq!(
            set_cookie(&cookie, "tok"),
            "fastapiusersauth=tok; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure"
        );
        assert_eq!(
            clear_cookie(&cookie),
            "fastapiusersauth=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure"
        );
        let cookie = SessionCookie::new(
            "sid",
            false,
            Some("example.com".into()),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            set_cookie(&cookie, "tok"),
            "sid=tok; Domain=example.com; HttpOnly; Max-Age=60; Path=/; SameSite=lax"
        );
        assert_eq!(
            clear_cookie(&cookie),
            "sid=\"\"; Domain=example.com; HttpOnly; Max-Age=0; Path=/; SameSite=lax"
        );
    }
}
