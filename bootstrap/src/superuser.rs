//! `portcullis create-superuser`: make (or promote) an administrator from
//! the command line. The work is the `create_superuser` use case; this
//! reads the command line's raw address and words its refusals.

use std::error::Error;

pub use portcullis_application::SuperuserOutcome;
use portcullis_application::{CreateSuperuserError, InfraError, UserService};
use portcullis_domain::EmailAddress;

/// Why `create-superuser` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SuperuserError {
    /// The address is not acceptable; why.
    #[error("--email: {0}")]
    InvalidEmail(String),
    /// A new user needs a password and none was given, or it breaks the
    /// policy; why.
    #[error("password refused: {0}")]
    InvalidPassword(String),
    /// A user has this address (given here) and promotion was not asked
    /// for.
    #[error("a user with e-mail {0} already exists; pass --promote to make it a superuser")]
    Exists(String),
    /// The store or the password hasher failed; the cause is the source.
    #[error("the store or the password hasher failed")]
    Store(#[source] InfraError),
}

/// Creates an active, verified superuser, or with `promote` makes an existing
/// user one (active too), through [`UserService::create_superuser`]. The
/// password is checked against the policy only when a user is created.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::{PortcullisBuilder, SuperuserOutcome, create_superuser};
/// use portcullis_domain::EmailAddress;
/// use portcullis_store_memory::MemoryUserStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = PortcullisBuilder::new()
///     .store(Arc::new(MemoryUserStore::new()))
///     .token_secrets([1; 32], [2; 32], [3; 32])
///     .build()
///     .unwrap();
/// let root = create_superuser(&service, "root@example.com", Some("a long password"), false).await;
/// assert!(matches!(root, Ok(SuperuserOutcome::Created(ref u)) if u.is_superuser && u.is_verified));
/// assert!(service.login("root@example.com", "a long password").await.is_ok());
///
/// // A user who registered is promoted; no password needed.
/// let ann = EmailAddress::parse("ann@example.com").unwrap();
/// service.register(ann, "ann's own password").await.unwrap();
/// let ann = create_superuser(&service, "ANN@example.com", None, true).await;
/// assert!(matches!(ann, Ok(SuperuserOutcome::Promoted(ref u)) if u.is_superuser));
/// # });
/// ```
pub async fn create_superuser(
    service: &UserService,
    email: &str,
    password: Option<&str>,
    promote: bool,
) -> Result<SuperuserOutcome, SuperuserError> {
    let email =
        EmailAddress::parse(email).map_err(|e| SuperuserError::InvalidEmail(e.to_string()))?;
    service
        .create_superuser(email, password, promote)
        .await
        .map_err(|e| match e {
            CreateSuperuserError::AlreadyExists(email) => SuperuserError::Exists(email.to_string()),
            CreateSuperuserError::MissingPassword => {
                SuperuserError::InvalidPassword("no password given".into())
            }
            CreateSuperuserError::InvalidPassword(why) => {
                SuperuserError::InvalidPassword(why.to_string())
            }
            CreateSuperuserError::Infra(e) => SuperuserError::Store(e),
        })
}

/// `e` and its sources, one after the other: what an operator reads.
pub(crate) fn with_causes(e: &(dyn Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| (*e).source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use portcullis_store_memory::MemoryUserStore;

    use super::*;
    use crate::PortcullisBuilder;

    fn service() -> UserService {
        PortcullisBuilder::new()
            .store(Arc::new(MemoryUserStore::new()))
            .hasher_config(portcullis_password::HasherConfig {
                argon2_memory_kib: 1024,
                argon2_iterations: 1,
                ..Default::default()
            })
            .token_secrets([1u8; 32], [2u8; 32], [3u8; 32])
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn creates_then_refuses_then_promotes() {
        let s = service();
        let created = create_superuser(&s, "Root@Example.com", Some("a long password"), false)
            .await
            .unwrap();
        let SuperuserOutcome::Created(u) = created else {
            panic!("expected Created, got {created:?}")
        };
        assert!(u.is_superuser && u.is_verified && u.is_active);
        assert_eq!(u.email.as_str(), "Root@example.com");

        let again = create_superuser(&s, "root@example.com", Some("a long password"), false).await;
        assert!(matches!(again, Err(SuperuserError::Exists(_))), "{again:?}");

        s.register(
            EmailAddress::parse("ann@example.com").unwrap(),
            "ann's password",
        )
        .await
        .unwrap();
        let promoted = create_superuser(&s, "ANN@example.com", None, true)
            .await
            .unwrap();
        assert!(matches!(promoted, SuperuserOutcome::Promoted(ref u) if u.is_superuser));
        let again = create_superuser(&s, "ann@example.com", None, true)
            .await
            .unwrap();
        assert!(matches!(again, SuperuserOutcome::AlreadySuperuser(_)));
    }

    #[tokio::test]
    async fn refuses_a_weak_password_and_a_bad_address() {
        let s = service();
        let weak = create_superuser(&s, "root@example.com", Some("short"), false).await;
        assert!(
            matches!(&weak, Err(SuperuserError::InvalidPassword(m)) if m.contains("at least 8")),
            "{weak:?}"
        );
        let bad = create_superuser(&s, "root@localhost", Some("a long password"), false).await;
        assert!(matches!(bad, Err(SuperuserError::InvalidEmail(_))));
    }
}
