//! TEMPORARY (h10, issue 10): a minimal `end_all_sessions` so that the HTTP
//! side (`DELETE /users/me/sessions`) builds and runs before c10's use case
//! is merged. The lead replaces this whole file with c10's
//! `application/src/sessions.rs` at merge.

use portcullis_domain::{User, UserPatch};

use crate::{InfraError, UserService};

impl UserService {
    /// Ends every session of `user`, the caller's own included: raises the
    /// user's session stamp (every access token issued before is refused
    /// once the stamp is checked) and deletes their opaque access tokens.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn end_all_sessions(&self, user: &User) -> Result<(), InfraError> {
        self.ports
            .users
            .patch(
                user.id,
                UserPatch {
                    end_sessions: true,
                    ..UserPatch::default()
                },
            )
            .await?;
        self.ports.sessions.delete_access_tokens_of(user.id).await?;
        tracing::info!("sessions revoked");
        Ok(())
    }
}
