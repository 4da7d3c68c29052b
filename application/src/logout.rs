use portcullis_domain::User;

use crate::UserService;

impl UserService {
    /// Logs `user` out. Access tokens are stateless JWTs: nothing is stored,
    /// so nothing can be revoked — the token keeps working until it expires,
    /// exactly as with FastAPI Users' JWT strategy. The caller has already
    /// authenticated the user; this is where a revocable session strategy
    /// would act.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn logout(&self, user: &User) {
        tracing::debug!("logout (stateless token, nothing to revoke)");
    }
}
