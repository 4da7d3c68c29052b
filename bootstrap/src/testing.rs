//! A test kit for hosts that test their own routes (feature `testing`):
//! an in-memory Portcullis whose hashing is cheap, users with any role and
//! flags made in one call, access tokens without HTTP, and the mails it
//! would have sent, tokens included.
//!
//! **For tests only**: its argon2 parameters ([`TEST_HASHER`]) and signing
//! secrets are deliberately weak and public.
//!
//! ```
//! use portcullis::domain::Role;
//! use portcullis::testing::{TestKit, TestUser};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let kit = TestKit::new();
//! let (ann, token) = kit
//!     .user_with_token(TestUser::new("ann@example.com").role(Role::Instructor))
//!     .await;
//! assert_eq!(ann.role, Role::Instructor);
//! // `token` goes in `Authorization: Bearer …`; the service behind
//! // `kit.service()` accepts it.
//! assert_eq!(kit.service().authenticate(&token).await.unwrap().id, ann.id);
//!
//! kit.service().forgot_password(&ann.email).await.unwrap();
//! assert!(kit.reset_token_for("ann@example.com").is_some());
//! # });
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use portcullis_application::{NewUser, UserService};
use portcullis_domain::{
    EmailAddress, FieldValue, FieldValues, Mail, MailError, Mailer, Role, User,
};
use portcullis_password::{Algorithm, HasherConfig};
use secrecy::ExposeSecret;

use crate::PortcullisBuilder;

/// Argon2id at its minimum cost (8 KiB, 1 iteration, 1 lane): about a
/// thousand times cheaper than the default. Never for real passwords.
pub const TEST_HASHER: HasherConfig = HasherConfig {
    algorithm: Algorithm::Argon2id,
    argon2_memory_kib: 8,
    argon2_iterations: 1,
    argon2_parallelism: 1,
    pbkdf2_rounds: HasherConfig::DEFAULT_PBKDF2_ROUNDS,
    queue_max: HasherConfig::DEFAULT_QUEUE_MAX,
    queue_timeout: HasherConfig::DEFAULT_QUEUE_TIMEOUT,
};

/// The password [`TestKit::user`] gives users unless told otherwise.
pub const TEST_PASSWORD: &str = "test password 1234";

/// Where the kit's mail links point.
pub const TEST_FRONTEND_URL: &str = "http://frontend.test.example.com";

/// A [`Mailer`] that keeps every mail, for tests to read.
#[derive(Debug, Default)]
pub struct RecordingMailer {
    mails: Mutex<Vec<Mail>>,
}

impl RecordingMailer {
    /// Every mail sent so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        self.mails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mail);
        Ok(())
    }
}

/// A user for [`TestKit::user`]: by default what registration makes (active,
/// unverified `student`) with [`TEST_PASSWORD`].
#[derive(Debug, Clone)]
pub struct TestUser {
    email: String,
    password: String,
    role: Role,
    is_active: bool,
    is_superuser: bool,
    is_verified: bool,
    fields: FieldValues,
}

impl TestUser {
    /// An active, unverified `student` at `email`.
    pub fn new(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            password: TEST_PASSWORD.to_owned(),
            role: Role::Student,
            is_active: true,
            is_superuser: false,
            is_verified: false,
            fields: FieldValues::new(),
        }
    }

    /// With this value of an extra user field (one the kit was built with:
    /// `TestKit::with(|b| b.user_fields(…))`); others take their default.
    pub fn field(mut self, name: &str, value: FieldValue) -> Self {
        self.fields.set(name, value);
        self
    }

    /// With this role.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// A superuser.
    pub fn superuser(mut self) -> Self {
        self.is_superuser = true;
        self
    }

    /// With a verified address.
    pub fn verified(mut self) -> Self {
        self.is_verified = true;
        self
    }

    /// Deactivated: its credentials and tokens are refused.
    pub fn inactive(mut self) -> Self {
        self.is_active = false;
        self
    }

    /// With this password instead of [`TEST_PASSWORD`].
    pub fn password(mut self, password: &str) -> Self {
        self.password = password.to_owned();
        self
    }
}

/// An in-memory Portcullis for tests, and what it mailed.
#[derive(Clone)]
pub struct TestKit {
    service: UserService,
    mailer: Arc<RecordingMailer>,
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKit {
    /// The kit with Portcullis' defaults otherwise (among them the
    /// failed-login lockout, 10 in 15 minutes, and the mail cap, 3 reset and
    /// verification mails per address per hour; lift it with
    /// `TestKit::with(|b| b.mail_per_address_per_hour(0))`), but for the limit
    /// on `POST`s under `/auth/`, which is off: a test sends them from one
    /// address, and faster than any client.
    pub fn new() -> Self {
        Self::with(|builder| builder)
    }

    /// The kit, with the builder adjusted first (your hooks, verification
    /// required, token lifetimes…). The store, hasher, secrets, mailer and
    /// frontend URL are the kit's, and the per-address limit is off
    /// (`.auth_rate_limit_per_minute(30)` puts it back); setting them here
    /// overrides them.
    ///
    /// # Panics
    /// When `configure` leaves settings the builder refuses (a short secret).
    pub fn with(configure: impl FnOnce(PortcullisBuilder) -> PortcullisBuilder) -> Self {
        let mailer = Arc::new(RecordingMailer::default());
        // No store set: the builder's memory store takes the fields
        // `configure` declares.
        let builder = PortcullisBuilder::new()
            .hasher_config(TEST_HASHER)
            .token_secrets(
                "portcullis test kit access secret!!",
                "portcullis test kit reset secret!!!",
                "portcullis test kit verify secret!!",
            )
            .mailer(mailer.clone())
            .frontend_url(TEST_FRONTEND_URL)
            .auth_rate_limit_per_minute(0);
        let service = match configure(builder).build() {
            Ok(service) => service,
            Err(e) => panic!("the test kit's Portcullis does not build: {e}"),
        };
        Self { service, mailer }
    }

    /// The use cases: mount them (`portcullis::mount(kit.service(), "/api")`)
    /// or call them.
    pub fn service(&self) -> UserService {
        self.service.clone()
    }

    /// Creates `user` through the `create_user` use case.
    ///
    /// # Panics
    /// When the address is malformed or taken, or the password breaks the
    /// policy: a test's mistake.
    pub async fn user(&self, user: TestUser) -> User {
        let email = match EmailAddress::parse(&user.email) {
            Ok(email) => email,
            Err(e) => panic!("test user {:?}: {e}", user.email),
        };
        let mut new = NewUser::new(email, user.password.as_str());
        new.role = user.role;
        new.is_active = user.is_active;
        new.is_superuser = user.is_superuser;
        new.is_verified = user.is_verified;
        new.fields = user.fields;
        match self.service.create_user(new).await {
            Ok(created) => created,
            Err(e) => panic!("test user {:?}: {e}", user.email),
        }
    }

    /// An access token for `user`, as login would give (an inactive user's
    /// is refused where it is used, as it should be).
    ///
    /// # Panics
    /// When no token can be issued (cannot happen with the kit's settings).
    pub async fn token(&self, user: &User) -> String {
        match self.service.issue_access_token(user).await {
            Ok(token) => token.expose_secret().to_owned(),
            Err(e) => panic!("no token for {}: {e}", user.email),
        }
    }

    /// [`user`](Self::user), then [`token`](Self::token) for them.
    pub async fn user_with_token(&self, user: TestUser) -> (User, String) {
        let user = self.user(user).await;
        let token = self.token(&user).await;
        (user, token)
    }

    /// Every mail the service sent, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mailer.mails()
    }

    /// The mails to `email` (any letter case), oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.as_str().eq_ignore_ascii_case(email))
            .collect()
    }

    /// The token of the newest reset-password link mailed to `email`.
    pub fn reset_token_for(&self, email: &str) -> Option<String> {
        self.token_in_link(email, "/reset-password?token=")
    }

    /// The token of the newest verification link mailed to `email`.
    pub fn verify_token_for(&self, email: &str) -> Option<String> {
        self.token_in_link(email, "/verify?token=")
    }

    fn token_in_link(&self, email: &str, path: &str) -> Option<String> {
        let marker = format!("{TEST_FRONTEND_URL}{path}");
        self.mails_to(email).iter().rev().find_map(|mail| {
            let start = mail.text.find(&marker)? + marker.len();
            let token: String = mail.text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect();
            (!token.is_empty()).then_some(token)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn users_get_their_role_and_flags_and_a_token_the_service_accepts() {
        let kit = TestKit::new();
        let (admin, token) = kit
            .user_with_token(TestUser::new("root@example.com").superuser().verified())
            .await;
        assert!(admin.is_superuser && admin.is_verified && admin.is_active);
        let me = kit.service().authenticate(&token).await.unwrap();
        assert_eq!(me.id, admin.id);

        let (_, inactive_token) = kit
            .user_with_token(TestUser::new("gone@example.com").inactive())
            .await;
        assert!(kit.service().authenticate(&inactive_token).await.is_err());
    }

    #[actix_web::test]
    async fn users_log_in_with_the_test_password_hashed_cheaply() {
        let kit = TestKit::new();
        let ann = kit.user(TestUser::new("ann@example.com")).await;
        assert!(
            ann.hashed_password.contains("m=8,t=1,p=1"),
            "{}",
            ann.hashed_password
        );
        assert!(
            kit.service()
                .login("ann@example.com", TEST_PASSWORD)
                .await
                .is_ok()
        );
    }

    #[actix_web::test]
    async fn reset_and_verify_tokens_are_read_from_the_mails_and_work() {
        let kit = TestKit::new();
        let ann = kit.user(TestUser::new("Ann@example.com")).await;
        assert_eq!(kit.reset_token_for("ann@example.com"), None);
        assert!(ann.fields.is_empty());

        kit.service().forgot_password(&ann.email).await.unwrap();
        let token = kit.reset_token_for("ann@example.com").unwrap();
        kit.service()
            .reset_password(&token, "a brand new password")
            .await
            .unwrap();
        assert!(
            kit.service()
                .login("ann@example.com", "a brand new password")
                .await
                .is_ok()
        );

        kit.service().request_verify(&ann.email).await.unwrap();
        let token = kit.verify_token_for("ANN@example.com").unwrap();
        assert!(kit.service().verify(&token).await.unwrap().is_verified);
        assert_eq!(kit.mails_to("ann@example.com").len(), 2);
    }

    #[actix_web::test]
    async fn users_get_the_extra_fields_the_kit_was_built_with() {
        let fields = crate::parse_user_fields(
            r#"{"nickname": {"type": "string", "nullable": true, "writable_by": "user"},
                "credits": {"type": "integer", "default": 3}}"#,
        )
        .unwrap();
        let kit = TestKit::with(|b| b.user_fields(fields));
        let ann = kit
            .user(TestUser::new("ann@example.com").field("credits", FieldValue::Integer(9)))
            .await;
        assert_eq!(ann.fields.get("credits"), Some(&FieldValue::Integer(9)));
        assert_eq!(ann.fields.get("nickname"), Some(&FieldValue::Null));
        let stored = kit
            .service()
            .authenticate(&kit.token(&ann).await)
            .await
            .unwrap();
        assert_eq!(stored.fields, ann.fields);
    }
}
