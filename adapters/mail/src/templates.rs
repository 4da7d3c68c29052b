//! The reset-password and verification mails.

use portcullis_domain::{EmailAddress, Mail};

/// `{frontend_url}{path}?token={token}`, with trailing `/`s (and white
/// space) of `frontend_url` trimmed and every token character outside
/// `[A-Za-z0-9._~-]` percent-encoded (JWTs pass unchanged).
///
/// ```
/// use portcullis_mail::mail_link;
/// assert_eq!(
///     mail_link("https://app.example.com/", "/verify", "a.b-c_d"),
///     "https://app.example.com/verify?token=a.b-c_d",
/// );
/// ```
pub fn mail_link(frontend_url: &str, path: &str, token: &str) -> String {
    let base = frontend_url.trim().trim_end_matches('/');
    let mut link = String::with_capacity(base.len() + path.len() + 7 + token.len());
    link.push_str(base);
    link.push_str(path);
    link.push_str("?token=");
    for byte in token.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            link.push(char::from(byte));
        } else {
            link.push_str(&format!("%{byte:02X}"));
        }
    }
    link
}

/// `text` made safe for HTML text and double- or single-quoted attribute
/// values: `&`, `<`, `>`, `"` and `'` are replaced by entities.
///
/// ```
/// use portcullis_mail::html_escape;
/// assert_eq!(html_escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;");
/// ```
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// The words of one kind of mail.
struct Wording {
    subject: &'static str,
    path: &'static str,
    /// Completed by the address, then a full stop.
    why: &'static str,
    action: &'static str,
    ignore: &'static str,
}

const RESET: Wording = Wording {
    subject: "Reset your password",
    path: "/reset-password",
    why: "Someone (hopefully you) asked to reset the password of the account",
    action: "Choose a new password",
    ignore: "If you did not ask for this, ignore this mail: your password stays as it is.",
};

const VERIFY: Wording = Wording {
    subject: "Verify your e-mail",
    path: "/verify",
    why: "Please confirm that this address belongs to you:",
    action: "Verify my e-mail address",
    ignore: "If you did not ask for this, ignore this mail.",
};

fn render(w: &Wording, to: &EmailAddress, frontend_url: &str, token: &str) -> Mail {
    let link = mail_link(frontend_url, w.path, token);
    let address = to.as_str();
    // The link stands alone on its line, so no line comes near the 998-byte
    // SMTP limit for any realistic token.
    let text = format!(
        "Hello,\n\
         \n\
         {why} {address}.\n\
         {action}:\n\
         \n\
         {link}\n\
         \n\
         {ignore}\n",
        why = w.why,
        action = w.action,
        ignore = w.ignore,
    );
    let link_html = html_escape(&link);
    let html = format!(
        "<!DOCTYPE html>\n\
         <html>\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <title>{subject}</title>\n\
         </head>\n\
         <body>\n\
         <p>Hello,</p>\n\
         <p>{why} {address}.</p>\n\
         <p><a href=\"{link_html}\">\n\
         {action}\n\
         </a></p>\n\
         <p>If the button does not work, copy this link into your browser:<br>\n\
         {link_html}\n\
         </p>\n\
         <p>{ignore}</p>\n\
         </body>\n\
         </html>\n",
        subject = html_escape(w.subject),
        why = html_escape(w.why),
        address = html_escape(address),
        action = html_escape(w.action),
        ignore = html_escape(w.ignore),
    );
    Mail {
        to: to.clone(),
        subject: w.subject.to_owned(),
        text,
        html,
    }
}

/// The "Reset your password" mail to `to`, whose text and HTML bodies carry
/// the link `{frontend_url}/reset-password?token={token}` (see
/// [`mail_link`]).
pub fn reset_password_mail(to: &EmailAddress, frontend_url: &str, token: &str) -> Mail {
    render(&RESET, to, frontend_url, token)
}

/// The "Verify your e-mail" mail to `to`, whose text and HTML bodies carry
/// the link `{frontend_url}/verify?token={token}` (see [`mail_link`]).
pub fn verify_mail(to: &EmailAddress, frontend_url: &str, token: &str) -> Mail {
    render(&VERIFY, to, frontend_url, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> EmailAddress {
        EmailAddress::parse("ann@example.com").unwrap()
    }

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-DEF_123";

    #[test]
    fn reset_mail_has_subject_and_link_in_both_bodies() {
        let m = reset_password_mail(&ann(), "http://localhost:3000", TOKEN);
        assert_eq!(m.to, ann());
        assert_eq!(m.subject, "Reset your password");
        let link = format!("http://localhost:3000/reset-password?token={TOKEN}");
        assert!(m.text.contains(&format!("\n{link}\n")), "{}", m.text);
        assert!(m.html.contains(&format!("href=\"{link}\"")), "{}", m.html);
        assert!(m.html.contains(&format!("\n{link}\n")), "{}", m.html);
    }

    #[test]
    fn verify_mail_has_subject_and_link() {
        let m = verify_mail(&ann(), "https://app.example.com", TOKEN);
        assert_eq!(m.subject, "Verify your e-mail");
        let link = format!("https://app.example.com/verify?token={TOKEN}");
        assert!(m.text.contains(&link));
        assert!(m.html.contains(&link));
        assert!(!m.text.contains("reset-password"));
    }

    #[test]
    fn trailing_slashes_of_frontend_url_are_trimmed() {
        for base in [
            "https://x.example.com/",
            "https://x.example.com//",
            " https://x.example.com ",
        ] {
            let m = verify_mail(&ann(), base, "t");
            assert!(
                m.text.contains("https://x.example.com/verify?token=t\n"),
                "{base}: {}",
                m.text
            );
        }
        let m = reset_password_mail(&ann(), "https://x.example.com/app/", "t");
        assert!(
            m.text
                .contains("https://x.example.com/app/reset-password?token=t\n")
        );
    }

    #[test]
    fn html_body_escapes_url_and_address() {
        let to = EmailAddress::parse("o'brien&co@example.com").unwrap();
        let m = reset_password_mail(&to, "https://x.example.com/?a=1&b=\"<script>", "t");
        assert!(
            m.html.contains("o&#x27;brien&amp;co@example.com"),
            "{}",
            m.html
        );
        assert!(
            m.html
                .contains("href=\"https://x.example.com/?a=1&amp;b=&quot;&lt;script&gt;/reset-password?token=t\""),
            "{}",
            m.html
        );
        assert!(!m.html.contains("<script>"));
        // The text body is not HTML: it stays as given.
        assert!(m.text.contains("o'brien&co@example.com"));
    }

    #[test]
    fn odd_token_characters_are_percent_encoded() {
        assert_eq!(
            mail_link("http://h", "/verify", "a+b/c="),
            "http://h/verify?token=a%2Bb%2Fc%3D"
        );
    }

    #[test]
    fn lines_stay_short_with_a_long_token() {
        let token = "x".repeat(600);
        let m = reset_password_mail(&ann(), "http://localhost:3000", &token);
        for body in [&m.text, &m.html] {
            assert!(body.lines().all(|l| l.len() < 998));
            assert!(body.contains(&token));
        }
    }
}
