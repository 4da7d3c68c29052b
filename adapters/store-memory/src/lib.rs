//! In-memory [`UserRepository`] (and the other store ports): for tests, demos and `DATABASE_URL=memory://`.
//! Everything is lost when the process ends.
//!
//! Depends on the domain only. The e-mail clash is decided under the same
//! lock as the write, so of many concurrent creates of one address exactly one
//! wins.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use portcullis_domain::{
    AccessTokenRecord, AccessTokenStore, EmailAddress, FieldValues, OAuthAccount,
    OAuthAccountStore, StoreError, ThrottleKind, ThrottleLedger, ThrottleWindow, User, UserFields,
    UserId, UserPatch, UserRepository,
};
use uuid::Uuid;

#[derive(Default)]
struct Tables {
    users: HashMap<UserId, User>,
    /// E-mail key (lowercased address) → id: the unique index.
    by_email: HashMap<String, UserId>,
    /// The [`ThrottleLedger`]'s windows.
    throttle: HashMap<(ThrottleKind, String), ThrottleWindow>,
    /// The [`AccessTokenStore`]'s tokens, by token.
    access_tokens: HashMap<String, AccessTokenRecord>,
    /// The [`OAuthAccountStore`]'s accounts, by row id.
    oauth_accounts: HashMap<Uuid, OAuthAccount>,
    /// (`oauth_name`, `account_id`) → row id: the unique index.
    oauth_by_provider: HashMap<(String, String), Uuid>,
}

/// A user store held in memory.
///
/// ```
/// # tokio_test_block_on(async {
/// use portcullis_domain::{EmailAddress, User, UserRepository};
/// use portcullis_store_memory::MemoryUserStore;
/// let store = MemoryUserStore::new();
/// let user = User::new(EmailAddress::parse("Ann@example.com").unwrap(), "hash".into());
/// store.create(user.clone()).await.unwrap();
/// let found = store.get_by_email(&EmailAddress::parse("ANN@example.com").unwrap()).await.unwrap();
/// assert_eq!(found, Some(user));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Default)]
pub struct MemoryUserStore {
    tables: Mutex<Tables>,
    fields: UserFields,
}

impl MemoryUserStore {
    /// An empty store, with no extra user field.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store keeping the deployment's extra user `fields`, as the SQL
    /// stores do: `create` keeps a value for each (its default when the
    /// user has none) and drops names that are not among them; `patch`
    /// ignores such names.
    pub fn with_user_fields(mut self, fields: UserFields) -> Self {
        self.fields = fields;
        self
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        self.lock().map(|t| t.users.len()).unwrap_or(0)
    }

    /// Whether no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        // A poisoned lock means a panic elsewhere mid-write; say so rather
        // than panic again.
        self.tables
            .lock()
            .map_err(|_| StoreError::unavailable("memory store lock poisoned"))
    }
}

/// Why a value does not fit its field (the application checks values
/// first, so this is a bug): the store refuses it as the SQL stores do.
fn unfit(field: &str, value: &portcullis_domain::FieldValue) -> StoreError {
    StoreError::unavailable(format!("value {value} does not fit user field {field:?}"))
}

/// A new user's values: one per field of `fields`, from `given` or the
/// default.
fn stored_fields(fields: &UserFields, given: &FieldValues) -> Result<FieldValues, StoreError> {
    fields
        .iter()
        .map(|spec| {
            let value = given.get(&spec.name).unwrap_or(&spec.default);
            if !value.fits(spec.ty, spec.nullable) {
                return Err(unfit(&spec.name, value));
            }
            Ok((spec.name.clone(), value.clone()))
        })
        .collect()
}

/// The values of a patch that name a field of `fields`.
fn changed_fields(fields: &UserFields, changes: &FieldValues) -> Result<FieldValues, StoreError> {
    changes
        .iter()
        .filter_map(|(name, value)| fields.get(name).map(|spec| (spec, value)))
        .map(|(spec, value)| {
            if !value.fits(spec.ty, spec.nullable) {
                return Err(unfit(&spec.name, value));
            }
            Ok((spec.name.clone(), value.clone()))
        })
        .collect()
}

#[async_trait]
impl UserRepository for MemoryUserStore {
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock()?.users.get(&id).cloned())
    }

    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .by_email
            .get(&email.key())
            .and_then(|id| tables.users.get(id))
            .cloned())
    }

    async fn create(&self, mut user: User) -> Result<User, StoreError> {
        user.fields = stored_fields(&self.fields, &user.fields)?;
        let mut tables = self.lock()?;
        let key = user.email.key();
        if tables.by_email.contains_key(&key) || tables.users.contains_key(&user.id) {
            return Err(StoreError::Conflict);
        }
        tables.by_email.insert(key, user.id);
        tables.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn patch(&self, id: UserId, mut patch: UserPatch) -> Result<User, StoreError> {
        patch.fields = changed_fields(&self.fields, &patch.fields)?;
        let mut tables = self.lock()?;
        let old_key = match tables.users.get(&id) {
            Some(old) => old.email.key(),
            None => return Err(StoreError::NotFound),
        };
        if let Some(email) = &patch.email {
            let new_key = email.key();
            if new_key != old_key {
                if tables.by_email.contains_key(&new_key) {
                    return Err(StoreError::Conflict);
                }
                tables.by_email.remove(&old_key);
                tables.by_email.insert(new_key, id);
            }
        }
        let user = tables.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        patch.apply_to(user);
        Ok(user.clone())
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut tables = self.lock()?;
        match tables.users.get_mut(&id) {
            Some(user) if user.hashed_password == current => {
                user.hashed_password = new.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        let user = tables.users.remove(&id).ok_or(StoreError::NotFound)?;
        tables.by_email.remove(&user.email.key());
        // ON DELETE CASCADE, as the SQL stores' `accesstoken.user_id`.
        tables.access_tokens.retain(|_, t| t.user_id != id);
        // Likewise `oauth_account.user_id`.
        let Tables {
            oauth_accounts,
            oauth_by_provider,
            ..
        } = &mut *tables;
        oauth_accounts.retain(|_, a| {
            let keep = a.user_id != id;
            if !keep {
                oauth_by_provider.remove(&(a.oauth_name.clone(), a.account_id.clone()));
            }
            keep
        });
        Ok(())
    }

    fn user_fields(&self) -> Option<UserFields> {
        Some(self.fields.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}

/// `time` to the millisecond, as the SQL stores keep it.
fn to_millis(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Whether `w` is open at `now` for windows of length `window`.
fn is_open(w: &ThrottleWindow, now: SystemTime, window: Duration) -> bool {
    w.closes(window) > now
}

#[async_trait]
impl ThrottleLedger for MemoryUserStore {
    async fn hit(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<ThrottleWindow, StoreError> {
        let now = to_millis(now);
        let mut tables = self.lock()?;
        let entry = tables
            .throttle
            .entry((kind, key.to_owned()))
            .or_insert(ThrottleWindow {
                started: now,
                count: 0,
            });
        if entry.count == 0 || !is_open(entry, now, window) {
            *entry = ThrottleWindow {
                started: now,
                count: 1,
            };
        } else {
            entry.count = entry.count.saturating_add(1);
        }
        Ok(*entry)
    }

    async fn current(
        &self,
        kind: ThrottleKind,
        key: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<Option<ThrottleWindow>, StoreError> {
        let now = to_millis(now);
        let tables = self.lock()?;
        Ok(tables
            .throttle
            .get(&(kind, key.to_owned()))
            .filter(|w| is_open(w, now, window))
            .copied())
    }

    async fn clear(&self, kind: ThrottleKind, key: &str) -> Result<(), StoreError> {
        self.lock()?.throttle.remove(&(kind, key.to_owned()));
        Ok(())
    }

    async fn purge(&self, kind: ThrottleKind, cutoff: SystemTime) -> Result<u64, StoreError> {
        let cutoff = to_millis(cutoff);
        let mut tables = self.lock()?;
        let before = tables.throttle.len();
        tables
            .throttle
            .retain(|(k, _), w| *k != kind || w.started >= cutoff);
        Ok(u64::try_from(before - tables.throttle.len()).unwrap_or(u64::MAX))
    }
}

/// `time` to the microsecond, as the SQL stores keep a timestamp.
fn to_micros(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

#[async_trait]
impl AccessTokenStore for MemoryUserStore {
    async fn create_access_token(&self, record: &AccessTokenRecord) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        if !tables.users.contains_key(&record.user_id) {
            return Err(StoreError::NotFound);
        }
        if tables.access_tokens.contains_key(&record.token) {
            return Err(StoreError::Conflict);
        }
        let record = AccessTokenRecord {
            created_at: to_micros(record.created_at),
            ..record.clone()
        };
        tables.access_tokens.insert(record.token.clone(), record);
        Ok(())
    }

    async fn get_access_token(
        &self,
        token: &str,
        not_before: SystemTime,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        Ok(self
            .lock()?
            .access_tokens
            .get(token)
            .filter(|t| t.created_at >= to_micros(not_before))
            .cloned())
    }

    async fn delete_access_token(&self, token: &str) -> Result<(), StoreError> {
        self.lock()?.access_tokens.remove(token);
        Ok(())
    }

    async fn delete_access_tokens_of(&self, user: UserId) -> Result<u64, StoreError> {
        let mut tables = self.lock()?;
        let before = tables.access_tokens.len();
        tables.access_tokens.retain(|_, t| t.user_id != user);
        Ok(u64::try_from(before - tables.access_tokens.len()).unwrap_or(u64::MAX))
    }

    async fn purge_access_tokens(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let cutoff = to_micros(cutoff);
        let mut tables = self.lock()?;
        let before = tables.access_tokens.len();
        tables.access_tokens.retain(|_, t| t.created_at >= cutoff);
        Ok(u64::try_from(before - tables.access_tokens.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl OAuthAccountStore for MemoryUserStore {
    async fn get_oauth_account(
        &self,
        oauth_name: &str,
        account_id: &str,
    ) -> Result<Option<OAuthAccount>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .oauth_by_provider
            .get(&(oauth_name.to_owned(), account_id.to_owned()))
            .and_then(|id| tables.oauth_accounts.get(id))
            .cloned())
    }

    async fn oauth_accounts_of(&self, user: UserId) -> Result<Vec<OAuthAccount>, StoreError> {
        let tables = self.lock()?;
        let mut accounts: Vec<OAuthAccount> = tables
            .oauth_accounts
            .values()
            .filter(|a| a.user_id == user)
            .cloned()
            .collect();
        accounts.sort_by(|a, b| {
            (&a.oauth_name, &a.account_id, a.id).cmp(&(&b.oauth_name, &b.account_id, b.id))
        });
        Ok(accounts)
    }

    async fn add_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        if !tables.users.contains_key(&account.user_id) {
            return Err(StoreError::NotFound);
        }
        let key = (account.oauth_name.clone(), account.account_id.clone());
        if tables.oauth_by_provider.contains_key(&key)
            || tables.oauth_accounts.contains_key(&account.id)
        {
            return Err(StoreError::Conflict);
        }
        tables.oauth_by_provider.insert(key, account.id);
        tables.oauth_accounts.insert(account.id, account.clone());
        Ok(())
    }

    async fn update_oauth_account(&self, account: &OAuthAccount) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        let stored = tables
            .oauth_accounts
            .get_mut(&account.id)
            .ok_or(StoreError::NotFound)?;
        stored.access_token.clone_from(&account.access_token);
        stored.expires_at = account.expires_at;
        stored.refresh_token.clone_from(&account.refresh_token);
        stored.account_email.clone_from(&account.account_email);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str) -> User {
        User::new(EmailAddress::parse(email).unwrap(), "h".into())
    }

    fn new_address(email: &str) -> UserPatch {
        UserPatch {
            email: Some(EmailAddress::parse(email).unwrap()),
            ..UserPatch::default()
        }
    }

    #[tokio::test]
    async fn patch_moves_the_email_index_and_detects_clashes() {
        let store = MemoryUserStore::new();
        let a = store.create(user("a@example.com")).await.unwrap();
        store.create(user("b@example.com")).await.unwrap();
        assert_eq!(
            store.patch(a.id, new_address("B@example.com")).await,
            Err(StoreError::Conflict)
        );
        store
            .patch(a.id, new_address("c@example.com"))
            .await
            .unwrap();
        let old = EmailAddress::parse("a@example.com").unwrap();
        assert_eq!(store.get_by_email(&old).await.unwrap(), None);
        // the freed address can be taken again
        store.create(user("A@example.com")).await.unwrap();
    }

    #[tokio::test]
    async fn delete_frees_the_address() {
        let store = MemoryUserStore::new();
        let a = store.create(user("a@example.com")).await.unwrap();
        store.delete(a.id).await.unwrap();
        assert_eq!(store.delete(a.id).await, Err(StoreError::NotFound));
        store.create(user("a@example.com")).await.unwrap();
        assert_eq!(store.len(), 1);
    }
}
