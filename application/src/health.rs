use crate::{InfraError, UserService};

impl UserService {
    /// Whether the service can do its work: `Ok` once the user store
    /// answers; the store's error otherwise (for `/health`).
    #[tracing::instrument(skip_all)]
    pub async fn health(&self) -> Result<(), InfraError> {
        Ok(self.ports.users.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use portcullis_domain::StoreError;

    use crate::InfraError;
    use crate::test_support::*;

    #[tokio::test]
    async fn healthy_when_the_store_answers() {
        let mut m = Mocks::new();
        m.users.expect_ping().times(1).returning(|| Ok(()));
        assert_matches!(m.service().health().await, Ok(()));
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_is_unavailable() {
        let mut m = Mocks::new();
        m.users.expect_ping().times(1).returning(|| Err(outage()));
        assert_matches!(
            m.service().health().await,
            Err(InfraError::Unavailable(StoreError::Unavailable(_)))
        );
    }
}
