//! A tiny, real SMTP server for tests.
//!
//! [`SmtpSink::start`] binds `127.0.0.1:0`, spawns an accept loop on the
//! current Tokio runtime (an actix runtime is a Tokio runtime too) and keeps
//! every mail it receives in memory. It speaks just enough ESMTP for lettre:
//! greeting, `EHLO`/`HELO` (advertising `8BITMIME`, `SMTPUTF8` and
//! `AUTH PLAIN LOGIN`, which accepts any credentials but records them),
//! `MAIL FROM`, `RCPT TO`, `DATA` (dot-unstuffed), `RSET`, `NOOP`, `VRFY`,
//! `QUIT`, and keeps a connection open for as many transactions as the
//! client wants (lettre pools connections). It counts connections and what
//! happened on each ([`SmtpSink::connections`]).
//!
//! [`SmtpSink::start_with`] adds TLS: [`SinkTls::StartTls`] offers
//! `STARTTLS` and refuses `AUTH` and `MAIL` until the client upgraded;
//! [`SinkTls::Implicit`] speaks TLS from the first byte. The server
//! certificate (for `127.0.0.1` and `localhost`) is issued at start by a
//! throw-away certificate authority, [`SmtpSink::ca_certificate_pem`], which
//! the client must trust.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use portcullis_tests::smtp_sink::SmtpSink;
//!
//! let sink = SmtpSink::start().await;
//! // … point the mailer at 127.0.0.1:sink.port(), trigger a mail …
//! let mail = sink
//!     .wait_for_mail_to("ann@example.com", Duration::from_secs(5))
//!     .await
//!     .expect("a mail to ann");
//! let token = mail.token_after("/reset-password?token=").expect("a link");
//! # let _ = token;
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Longest command line accepted (RFC 5321 allows 512 octets; be generous).
const MAX_COMMAND_LINE: usize = 4096;
/// Largest message accepted by `DATA`.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// One mail received by the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address (without angle brackets or parameters).
    pub from: String,
    /// The `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The raw message (headers and body) as sent after `DATA`, CRLF line
    /// endings, dot-unstuffed, without the terminating `.` line.
    pub data: String,
}

impl ReceivedMail {
    /// The token following the first occurrence of `marker` in the raw data:
    /// the longest run of `[A-Za-z0-9_.-]` right after it. `None` when the
    /// marker is absent or nothing token-like follows it.
    ///
    /// ```
    /// use portcullis_tests::smtp_sink::ReceivedMail;
    /// let mail = ReceivedMail {
    ///     from: "a@example.com".into(),
    ///     to: vec!["b@example.com".into()],
    ///     data: "see http://x/reset-password?token=ab.c-d_1\r\n".into(),
    /// };
    /// assert_eq!(mail.token_after("/reset-password?token=").as_deref(), Some("ab.c-d_1"));
    /// assert_eq!(mail.token_after("/verify?token="), None);
    /// ```
    pub fn token_after(&self, marker: &str) -> Option<String> {
        let start = self.data.find(marker)? + marker.len();
        let token: String = self.data[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect();
        (!token.is_empty()).then_some(token)
    }

    /// The value of the first header called `name` (case-insensitive), with
    /// folded continuation lines joined; `None` when absent. Only the header
    /// block (up to the first empty line) is searched; encoded words are not
    /// decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self
            .data
            .split("\r\n\r\n")
            .next()
            .unwrap_or(self.data.as_str());
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            match value.as_mut() {
                Some(v) if line.starts_with([' ', '\t']) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                Some(_) => break,
                None => {
                    if let Some((key, rest)) = line.split_once(':')
                        && key.trim().eq_ignore_ascii_case(name)
                    {
                        value = Some(rest.trim().to_owned());
                    }
                }
            }
        }
        value
    }

    /// Whether one of the `RCPT TO` addresses is `address`
    /// (case-insensitive).
    pub fn is_to(&self, address: &str) -> bool {
        self.to.iter().any(|rcpt| same_address(rcpt, address))
    }
}

fn same_address(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

#[derive(Debug)]
struct Stored {
    mail: ReceivedMail,
    taken: bool,
}

/// Whether and how the sink protects its connections; see the
/// [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain text only; `STARTTLS` is not offered.
    #[default]
    None,
    /// Plain text upgraded with `STARTTLS`, which the sink offers and
    /// requires before `AUTH` and `MAIL`.
    StartTls,
    /// TLS from the first byte ("implicit TLS", `SMTP_TLS=tls`).
    Implicit,
}

/// One `AUTH` exchange the sink accepted, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpAuth {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    /// The user name (`PLAIN`'s authentication identity).
    pub username: String,
    /// The password, in clear.
    pub password: String,
    /// Whether the credentials came over TLS.
    pub over_tls: bool,
}

/// What happened on one TCP connection to the sink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpConnection {
    /// TLS from the first byte ([`SinkTls::Implicit`]).
    pub implicit_tls: bool,
    /// The client upgraded the connection with `STARTTLS`.
    pub starttls: bool,
    /// The `AUTH` exchanges, in order.
    pub auths: Vec<SmtpAuth>,
    /// Mails received before any TLS.
    pub mails_in_clear: usize,
    /// Mails received over TLS.
    pub mails_over_tls: usize,
}

#[derive(Debug, Default)]
struct Shared {
    mails: Mutex<Vec<Stored>>,
    connections: Mutex<Vec<SmtpConnection>>,
    arrived: Notify,
}

/// Locks `mutex`; a panic while holding one of the sink's locks cannot
/// leave its Vec inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Stored>> {
        lock(&self.mails)
    }

    fn push(&self, mail: ReceivedMail) {
        self.lock().push(Stored { mail, taken: false });
        self.arrived.notify_waiters();
    }

    fn take_first_to(&self, to: &str) -> Option<ReceivedMail> {
        let mut mails = self.lock();
        let stored = mails.iter_mut().find(|s| !s.taken && s.mail.is_to(to))?;
        stored.taken = true;
        Some(stored.mail.clone())
    }

    /// Records a new connection; returns its index.
    fn connected(&self, implicit_tls: bool) -> usize {
        let mut connections = lock(&self.connections);
        connections.push(SmtpConnection {
            implicit_tls,
            ..SmtpConnection::default()
        });
        connections.len() - 1
    }

    fn update(&self, connection: usize, change: impl FnOnce(&mut SmtpConnection)) {
        change(&mut lock(&self.connections)[connection]);
    }
}

/// The TLS side of a sink: the acceptor and the CA that issued its
/// certificate.
struct SinkCertificates {
    acceptor: tokio_native_tls::TlsAcceptor,
    ca_pem: String,
}

impl SinkCertificates {
    /// A fresh CA and a server certificate it issued for `127.0.0.1` and
    /// `localhost`, valid from now to tomorrow.
    fn generate() -> Result<Self, openssl::error::ErrorStack> {
        use openssl::asn1::Asn1Time;
        use openssl::bn::{BigNum, MsbOption};
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::{PKey, Private};
        use openssl::x509::extension::{
            BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
        };
        use openssl::x509::{X509, X509Name, X509NameBuilder};

        fn key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)
        }
        fn name(common_name: &str) -> Result<X509Name, openssl::error::ErrorStack> {
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
            Ok(name.build())
        }
        fn builder(
            subject: &X509Name,
            key: &PKey<Private>,
        ) -> Result<openssl::x509::X509Builder, openssl::error::ErrorStack> {
            let mut builder = X509::builder()?;
            builder.set_version(2)?;
            let mut serial = BigNum::new()?;
            serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
            let serial = serial.to_asn1_integer()?;
            builder.set_serial_number(&serial)?;
            builder.set_subject_name(subject)?;
            builder.set_pubkey(key)?;
            let (now, tomorrow) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(1)?);
            builder.set_not_before(&now)?;
            builder.set_not_after(&tomorrow)?;
            Ok(builder)
        }

        let ca_key = key()?;
        let ca_name = name("portcullis test CA")?;
        let mut ca = builder(&ca_name, &ca_key)?;
        ca.set_issuer_name(&ca_name)?;
        ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        ca.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
        ca.sign(&ca_key, MessageDigest::sha256())?;
        let ca = ca.build();

        let server_key = key()?;
        let mut server = builder(&name("localhost")?, &server_key)?;
        server.set_issuer_name(ca.subject_name())?;
        server.append_extension(BasicConstraints::new().build()?)?;
        server.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        server.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&server.x509v3_context(Some(&ca), None))?;
        server.append_extension(san)?;
        server.sign(&ca_key, MessageDigest::sha256())?;
        let server = server.build();

        let identity = native_tls::Identity::from_pkcs8(
            &server.to_pem()?,
            &server_key.private_key_to_pem_pkcs8()?,
        )
        .expect("SmtpSink: a TLS identity from the certificate made");
        let acceptor = native_tls::TlsAcceptor::new(identity).expect("SmtpSink: a TLS acceptor");
        Ok(Self {
            acceptor: acceptor.into(),
            ca_pem: String::from_utf8(ca.to_pem()?).expect("PEM is ASCII"),
        })
    }
}

/// A running test SMTP server; see the [module docs](self). Dropping it stops
/// accepting connections.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    ca_pem: Option<String>,
    accept_loop: JoinHandle<()>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("tls", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and spawns the accept loop with `tokio::spawn`
    /// on the current runtime; plain text only.
    ///
    /// # Panics
    /// When binding fails, or outside a Tokio runtime.
    pub async fn start() -> SmtpSink {
        Self::start_with(SinkTls::None).await
    }

    /// Like [`SmtpSink::start`], protecting connections as `tls` says, with
    /// a certificate made now (see [`SmtpSink::ca_certificate_pem`]).
    ///
    /// # Panics
    /// When binding or making the certificate fails, or outside a Tokio
    /// runtime.
    pub async fn start_with(tls: SinkTls) -> SmtpSink {
        let certificates = match tls {
            SinkTls::None => None,
            SinkTls::StartTls | SinkTls::Implicit => Some(Arc::new(
                SinkCertificates::generate().expect("SmtpSink: make a certificate"),
            )),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("SmtpSink: bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("SmtpSink: local address")
            .port();
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        let ca_pem = certificates.as_ref().map(|c| c.ca_pem.clone());
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Transient accept errors (e.g. too many open files):
                    // back off a little and go on.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = Arc::clone(&accept_shared);
                let certificates = certificates.clone();
                tokio::spawn(async move {
                    // A client that goes away mid-session is not our problem.
                    let _ = serve(stream, shared, tls, certificates).await;
                });
            }
        });
        SmtpSink {
            port,
            shared,
            ca_pem,
            accept_loop,
        }
    }

    /// The port the sink listens on (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate of the authority that issued the sink's server
    /// certificate, for the client to trust; `None` without TLS.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Every connection accepted so far, in order, with what happened on it.
    pub fn connections(&self) -> Vec<SmtpConnection> {
        lock(&self.shared.connections).clone()
    }

    /// Every `AUTH` exchange so far, on all connections, in order.
    pub fn auths(&self) -> Vec<SmtpAuth> {
        self.connections()
            .into_iter()
            .flat_map(|c| c.auths)
            .collect()
    }

    /// Every mail received so far, in arrival order (taken ones included).
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.shared.lock().iter().map(|s| s.mail.clone()).collect()
    }

    /// Waits up to `timeout` for the first not-yet-taken mail with `to`
    /// among its `RCPT TO` addresses (case-insensitive), marks it taken and
    /// returns it. `None` on timeout.
    pub async fn wait_for_mail_to(&self, to: &str, timeout: Duration) -> Option<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            // Register interest before looking, so a mail stored between the
            // look and the wait still wakes us.
            arrived.as_mut().enable();
            if let Some(mail) = self.shared.take_first_to(to) {
                return Some(mail);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.shared.take_first_to(to);
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Reads one line (up to and including `\n`) of at most `limit` bytes.
/// `Ok(None)` at end of stream.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<()>> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { None } else { Some(()) });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if buf.len() + used > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        buf.extend_from_slice(chunk);
        reader.consume(used);
        if done {
            return Ok(Some(()));
        }
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The address inside `<…>` after a `MAIL FROM:` / `RCPT TO:` prefix, or the
/// first word when there are no brackets.
fn path_argument(rest: &str) -> String {
    let rest = rest.trim();
    if let Some(open) = rest.find('<')
        && let Some(close) = rest[open..].find('>')
    {
        return rest[open + 1..open + close].to_owned();
    }
    rest.split_whitespace().next().unwrap_or("").to_owned()
}

/// The text base64 `line` (one SASL response) stands for; `=` is empty.
fn sasl_decode(line: &[u8]) -> String {
    use base64::Engine as _;
    let line = strip_eol(line);
    if line == b"=" {
        return String::new();
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line)
        .unwrap_or_else(|_| b"<not base64>".to_vec());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// User name and password of an `AUTH PLAIN` response
/// (`authzid NUL authcid NUL password`).
fn plain_credentials(response: &[u8]) -> (String, String) {
    let decoded = sasl_decode(response);
    let mut parts = decoded.split('\0');
    let _authzid = parts.next();
    let username = parts.next().unwrap_or_default().to_owned();
    let password = parts.next().unwrap_or_default().to_owned();
    (username, password)
}

async fn reply<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> std::io::Result<()> {
    writer.write_all(text.as_bytes()).await?;
    writer.flush().await
}

fn io_error(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    tls: SinkTls,
    certificates: Option<Arc<SinkCertificates>>,
) -> std::io::Result<()> {
    let connection = shared.connected(tls == SinkTls::Implicit);
    let session = Session {
        shared: &shared,
        connection,
        offer_starttls: false,
        over_tls: false,
        greet: true,
    };
    match (tls, certificates) {
        (SinkTls::Implicit, Some(certificates)) => {
            let stream = certificates
                .acceptor
                .accept(stream)
                .await
                .map_err(io_error)?;
            let session = Session {
                over_tls: true,
                ..session
            };
            session.run(stream).await.map(drop)
        }
        (SinkTls::StartTls, Some(certificates)) => {
            let session = Session {
                offer_starttls: true,
                ..session
            };
            let Some(stream) = session.run(stream).await? else {
                return Ok(());
            };
            let stream = certificates
                .acceptor
                .accept(stream)
                .await
                .map_err(io_error)?;
            shared.update(connection, |c| c.starttls = true);
            // RFC 3207: the session starts over, without a new greeting.
            let session = Session {
                offer_starttls: false,
                over_tls: true,
                greet: false,
                ..session
            };
            session.run(stream).await.map(drop)
        }
        _ => session.run(stream).await.map(drop),
    }
}

/// One SMTP session on one stream (a connection upgraded with `STARTTLS`
/// has two).
#[derive(Clone, Copy)]
struct Session<'a> {
    shared: &'a Shared,
    connection: usize,
    /// Offer `STARTTLS` and require it before `AUTH` and `MAIL`.
    offer_starttls: bool,
    over_tls: bool,
    greet: bool,
}

impl Session<'_> {
    /// Serves `stream` until `QUIT` or the end of the stream (`Ok(None)`),
    /// or until the client asked for `STARTTLS` and was told to go ahead:
    /// then the stream comes back, to be wrapped in TLS.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) -> std::io::Result<Option<S>> {
        let (read, mut writer) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();

        let mut from: Option<String> = None;
        let mut to: Vec<String> = Vec::new();

        if self.greet {
            reply(
                &mut writer,
                "220 localhost portcullis-test-sink ESMTP ready\r\n",
            )
            .await?;
        }

        while read_line(&mut reader, &mut line, MAX_COMMAND_LINE)
            .await?
            .is_some()
        {
            let command = String::from_utf8_lossy(strip_eol(&line)).into_owned();
            let (verb, rest) = match command.split_once(' ') {
                Some((verb, rest)) => (verb.to_ascii_uppercase(), rest.to_owned()),
                None => (command.to_ascii_uppercase(), String::new()),
            };
            if self.offer_starttls && matches!(verb.as_str(), "AUTH" | "MAIL") {
                reply(
                    &mut writer,
                    "530 5.7.0 Must issue a STARTTLS command first\r\n",
                )
                .await?;
                continue;
            }
            match verb.as_str() {
                "EHLO" => {
                    from = None;
                    to.clear();
                    // Like many servers, AUTH only once the line is private.
                    let extensions = if self.offer_starttls {
                        "250-STARTTLS\r\n"
                    } else {
                        "250-AUTH PLAIN LOGIN\r\n"
                    };
                    reply(
                        &mut writer,
                        &format!(
                            "250-localhost greets you\r\n\
                             250-8BITMIME\r\n\
                             250-SMTPUTF8\r\n\
                             {extensions}\
                             250 ENHANCEDSTATUSCODES\r\n"
                        ),
                    )
                    .await?;
                }
                "HELO" => {
                    from = None;
                    to.clear();
                    reply(&mut writer, "250 localhost\r\n").await?;
                }
                "STARTTLS" if self.offer_starttls => {
                    if !reader.buffer().is_empty() {
                        // RFC 3207: nothing may follow STARTTLS before the
                        // reply.
                        return Err(io_error("commands pipelined after STARTTLS"));
                    }
                    reply(&mut writer, "220 2.0.0 ready to start TLS\r\n").await?;
                    return Ok(Some(reader.into_inner().unsplit(writer)));
                }
                "AUTH" => {
                    let mut args = rest.split_whitespace();
                    let mechanism = args.next().unwrap_or("").to_ascii_uppercase();
                    let initial = args.next().map(|a| a.as_bytes().to_vec());
                    // The responses still to read, after their prompts
                    // ("Username:", "Password:" in base64 for LOGIN).
                    let prompts: &[&str] = match (mechanism.as_str(), &initial) {
                        ("PLAIN", Some(_)) => &[],
                        ("PLAIN", None) => &["334 \r\n"],
                        ("LOGIN", Some(_)) => &["334 UGFzc3dvcmQ6\r\n"],
                        ("LOGIN", None) => &["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"],
                        _ => {
                            reply(&mut writer, "504 5.5.4 mechanism not supported\r\n").await?;
                            continue;
                        }
                    };
                    let mut responses: Vec<Vec<u8>> = initial.into_iter().collect();
                    let mut cancelled = false;
                    for prompt in prompts {
                        reply(&mut writer, prompt).await?;
                        if read_line(&mut reader, &mut line, MAX_COMMAND_LINE)
                            .await?
                            .is_none()
                        {
                            return Ok(None);
                        }
                        if strip_eol(&line) == b"*" {
                            cancelled = true;
                            break;
                        }
                        responses.push(line.clone());
                    }
                    if cancelled {
                        reply(&mut writer, "501 5.0.0 authentication cancelled\r\n").await?;
                        continue;
                    }
                    let (username, password) = if mechanism == "PLAIN" {
                        plain_credentials(&responses[0])
                    } else {
                        (sasl_decode(&responses[0]), sasl_decode(&responses[1]))
                    };
                    let over_tls = self.over_tls;
                    self.shared.update(self.connection, |c| {
                        c.auths.push(SmtpAuth {
                            mechanism,
                            username,
                            password,
                            over_tls,
                        });
                    });
                    reply(&mut writer, "235 2.7.0 authentication successful\r\n").await?;
                }
                "MAIL" => {
                    let Some(arg) = strip_prefix_ignore_case(&rest, "FROM:") else {
                        reply(&mut writer, "501 5.5.4 syntax: MAIL FROM:<address>\r\n").await?;
                        continue;
                    };
                    from = Some(path_argument(arg));
                    to.clear();
                    reply(&mut writer, "250 2.1.0 OK\r\n").await?;
                }
                "RCPT" => {
                    let Some(arg) = strip_prefix_ignore_case(&rest, "TO:") else {
                        reply(&mut writer, "501 5.5.4 syntax: RCPT TO:<address>\r\n").await?;
                        continue;
                    };
                    if from.is_none() {
                        reply(&mut writer, "503 5.5.1 MAIL first\r\n").await?;
                        continue;
                    }
                    to.push(path_argument(arg));
                    reply(&mut writer, "250 2.1.5 OK\r\n").await?;
                }
                "DATA" => {
                    if from.is_none() || to.is_empty() {
                        reply(&mut writer, "503 5.5.1 MAIL and RCPT first\r\n").await?;
                        continue;
                    }
                    reply(&mut writer, "354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                    let mut data: Vec<u8> = Vec::new();
                    loop {
                        if read_line(&mut reader, &mut line, MAX_MESSAGE_BYTES)
                            .await?
                            .is_none()
                        {
                            return Ok(None);
                        }
                        let content = strip_eol(&line);
                        if content == b"." {
                            break;
                        }
                        let content = content.strip_prefix(b".").unwrap_or(content);
                        if data.len() + content.len() + 2 > MAX_MESSAGE_BYTES {
                            return Err(io_error("message too large"));
                        }
                        data.extend_from_slice(content);
                        data.extend_from_slice(b"\r\n");
                    }
                    let mail = ReceivedMail {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data: String::from_utf8_lossy(&data).into_owned(),
                    };
                    let over_tls = self.over_tls;
                    self.shared.update(self.connection, |c| {
                        if over_tls {
                            c.mails_over_tls += 1;
                        } else {
                            c.mails_in_clear += 1;
                        }
                    });
                    self.shared.push(mail);
                    reply(&mut writer, "250 2.0.0 OK queued\r\n").await?;
                }
                "RSET" => {
                    from = None;
                    to.clear();
                    reply(&mut writer, "250 2.0.0 OK\r\n").await?;
                }
                "NOOP" => reply(&mut writer, "250 2.0.0 OK\r\n").await?,
                "VRFY" => {
                    reply(&mut writer, "252 2.1.5 cannot verify, will accept\r\n").await?;
                }
                "QUIT" => {
                    reply(&mut writer, "221 2.0.0 bye\r\n").await?;
                    return Ok(None);
                }
                _ => reply(&mut writer, "500 5.5.2 command not recognized\r\n").await?,
            }
        }
        Ok(None)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A mail server that accepts TCP connections and never says a word: no
/// greeting, no answer, the connection held open until the peer is
/// dropped. A client that waits for it waits until its own timeout.
///
/// ```no_run
/// # async fn demo() {
/// use std::time::Duration;
/// use portcullis_tests::smtp_sink::StalledSmtpPeer;
///
/// let peer = StalledSmtpPeer::start().await;
/// // … point the mailer at 127.0.0.1:peer.port(), trigger a mail …
/// assert!(peer.wait_for_connections(1, Duration::from_secs(5)).await);
/// assert_eq!((peer.held(), peer.still_waiting()), (1, 1));
/// # }
/// ```
pub struct StalledSmtpPeer {
    port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
    connected: Arc<Notify>,
    accept_loop: JoinHandle<()>,
}

impl std::fmt::Debug for StalledSmtpPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StalledSmtpPeer")
            .field("port", &self.port)
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

impl StalledSmtpPeer {
    /// Binds `127.0.0.1:0` and holds every connection it accepts.
    ///
    /// # Panics
    /// When binding fails, or outside a Tokio runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("StalledSmtpPeer: bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("StalledSmtpPeer: local address")
            .port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let connected = Arc::new(Notify::new());
        let (accept_held, accept_connected) = (Arc::clone(&held), Arc::clone(&connected));
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                lock(&accept_held).push(stream);
                accept_connected.notify_waiters();
            }
        });
        Self {
            port,
            held,
            connected,
            accept_loop,
        }
    }

    /// The port the peer listens on (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections the peer accepted and holds, unanswered.
    pub fn held(&self) -> usize {
        lock(&self.held).len()
    }

    /// How many of the held connections their client has not closed yet:
    /// a client still waiting for the peer's first word.
    pub fn still_waiting(&self) -> usize {
        let mut buf = [0u8; 512];
        lock(&self.held)
            .iter()
            .filter(|stream| match stream.try_read(&mut buf) {
                // End of stream: the client gave up and closed it.
                Ok(0) => false,
                // Something sent, or nothing to read yet: still there.
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            })
            .count()
    }

    /// Waits up to `timeout` until the peer has accepted at least `n`
    /// connections; whether it did.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let connected = self.connected.notified();
            tokio::pin!(connected);
            connected.as_mut().enable();
            if self.held() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, connected).await.is_err() {
                return self.held() >= n;
            }
        }
    }
}

impl Drop for StalledSmtpPeer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(data: &str) -> ReceivedMail {
        ReceivedMail {
            from: "from@example.com".into(),
            to: vec!["To@Example.com".into()],
            data: data.into(),
        }
    }

    #[test]
    fn token_after_stops_at_non_token_chars() {
        let m = mail("x /verify?token=a.B-c_9\r\n<a href=\"/verify?token=zzz\">");
        assert_eq!(m.token_after("/verify?token=").as_deref(), Some("a.B-c_9"));
        assert_eq!(
            mail("/verify?token=\r\n").token_after("/verify?token="),
            None
        );
    }

    #[test]
    fn header_unfolds_and_ignores_case() {
        let m = mail("Subject: Hello\r\n  world\r\nTo: x\r\n\r\nSubject: body\r\n");
        assert_eq!(m.header("subject").as_deref(), Some("Hello world"));
        assert_eq!(m.header("From"), None);
        assert!(m.is_to("to@example.COM"));
    }

    #[test]
    fn path_argument_strips_brackets_and_parameters() {
        assert_eq!(path_argument("<a@b.c> BODY=8BITMIME"), "a@b.c");
        assert_eq!(path_argument(" a@b.c SIZE=10"), "a@b.c");
        assert_eq!(path_argument("<>"), "");
    }

    async fn converse(stream: &mut TcpStream, send: &str) -> String {
        stream.write_all(send.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut out = String::new();
        // Read until the last line of the reply ("NNN " form) arrives.
        loop {
            let n = tokio::io::AsyncReadExt::read(stream, &mut buf)
                .await
                .unwrap();
            assert!(n > 0, "connection closed");
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(last) = out.trim_end_matches("\r\n").rsplit("\r\n").next()
                && last.as_bytes().get(3) == Some(&b' ')
                && out.ends_with("\r\n")
            {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn speaks_enough_smtp_for_two_transactions() {
        let sink = SmtpSink::start().await;
        let mut s = TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .unwrap();
        let mut greeting = vec![0u8; 512];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut greeting)
            .await
            .unwrap();
        assert!(greeting[..n].starts_with(b"220 "));
        assert!(converse(&mut s, "EHLO me\r\n").await.contains("250 "));
        assert!(
            converse(&mut s, "AUTH PLAIN AGEAYg==\r\n")
                .await
                .starts_with("235")
        );
        assert!(
            converse(&mut s, "AUTH LOGIN\r\n")
                .await
                .starts_with("334 VXNlcm5hbWU6")
        );
        assert!(converse(&mut s, "dXNlcg==\r\n").await.starts_with("334"));
        assert!(converse(&mut s, "cGFzcw==\r\n").await.starts_with("235"));
        for i in 0..2 {
            assert!(
                converse(&mut s, "MAIL FROM:<f@example.com>\r\n")
                    .await
                    .starts_with("250")
            );
            assert!(
                converse(&mut s, "RCPT TO:<t@example.com>\r\n")
                    .await
                    .starts_with("250")
            );
            assert!(converse(&mut s, "DATA\r\n").await.starts_with("354"));
            let body = format!("Subject: n{i}\r\n\r\n..dot\r\nplain\r\n.\r\n");
            assert!(converse(&mut s, &body).await.starts_with("250"));
        }
        assert!(converse(&mut s, "NOOP\r\n").await.starts_with("250"));
        assert!(converse(&mut s, "QUIT\r\n").await.starts_with("221"));

        let first = sink
            .wait_for_mail_to("T@example.com", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(first.from, "f@example.com");
        assert_eq!(first.data, "Subject: n0\r\n\r\n.dot\r\nplain\r\n");
        let second = sink
            .wait_for_mail_to("t@example.com", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(second.header("Subject").as_deref(), Some("n1"));
        assert!(
            sink.wait_for_mail_to("t@example.com", Duration::from_millis(50))
                .await
                .is_none()
        );
        assert_eq!(sink.mails().len(), 2);
        let login = |mechanism: &str, username: &str, password: &str| SmtpAuth {
            mechanism: mechanism.into(),
            username: username.into(),
            password: password.into(),
            over_tls: false,
        };
        assert_eq!(
            sink.connections(),
            vec![SmtpConnection {
                implicit_tls: false,
                starttls: false,
                auths: vec![login("PLAIN", "a", "b"), login("LOGIN", "user", "pass")],
                mails_in_clear: 2,
                mails_over_tls: 0,
            }]
        );
    }

    #[tokio::test]
    async fn with_starttls_auth_and_mail_wait_for_the_upgrade() {
        let sink = SmtpSink::start_with(SinkTls::StartTls).await;
        assert!(
            sink.ca_certificate_pem()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let mut s = TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .unwrap();
        let mut greeting = vec![0u8; 512];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut greeting)
            .await
            .unwrap();
        assert!(greeting[..n].starts_with(b"220 "));
        let ehlo = converse(&mut s, "EHLO me\r\n").await;
        assert!(
            ehlo.contains("250-STARTTLS") && !ehlo.contains("AUTH"),
            "{ehlo}"
        );
        assert!(
            converse(&mut s, "AUTH PLAIN AGEAYg==\r\n")
                .await
                .starts_with("530")
        );
        assert!(
            converse(&mut s, "MAIL FROM:<f@example.com>\r\n")
                .await
                .starts_with("530")
        );
        assert!(converse(&mut s, "STARTTLS\r\n").await.starts_with("220"));
        assert_eq!(sink.connections().len(), 1);
        assert!(sink.auths().is_empty());
    }
}
