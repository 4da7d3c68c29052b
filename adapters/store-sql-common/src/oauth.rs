//! The provider accounts of social login: FastAPI Users' `oauth_account`
//! table (the [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore)),
//! with its DDL and the statements over it written once for both dialects.
//!
//! The table is exactly the one FastAPI Users' SQLAlchemy adapter
//! (`SQLAlchemyBaseOAuthAccountTableUUID`, fastapi-users-db-sqlalchemy 7)
//! creates, so a FastAPI Users database with social login is adopted with
//! its links, and a link either side writes is read by the other. On
//! PostgreSQL (captured from FastAPI Users 15, in
//! `tests/fixtures/fastapi_users_sql/postgres_oauth_schema.sql`):
//!
//! ```sql
//! CREATE TABLE oauth_account (
//!     id UUID NOT NULL,
//!     user_id UUID NOT NULL,
//!     oauth_name VARCHAR(100) NOT NULL,
//!     access_token VARCHAR(1024) NOT NULL,
//!     expires_at INTEGER,
//!     refresh_token VARCHAR(1024),
//!     account_id VARCHAR(320) NOT NULL,
//!     account_email VARCHAR(320) NOT NULL,
//!     PRIMARY KEY (id),
//!     FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
//! );
//! CREATE INDEX ix_oauth_account_oauth_name ON oauth_account (oauth_name);
//! CREATE INDEX ix_oauth_account_account_id ON oauth_account (account_id);
//! ```
//!
//! On SQLite, `id` and `user_id` are `CHAR(36)` (the UUID as hyphenated
//! lowercase text). Note that `expires_at` is a 32-bit `INTEGER` on
//! PostgreSQL: an expiry after 2038-01-19 does not fit (the write fails).
//!
//! Portcullis adds one index FastAPI Users does not have:
//! [`OAUTH_ACCOUNT_UNIQUE_INDEX`], unique on (`oauth_name`, `account_id`),
//! so that one provider account is linked at most once, decided by the
//! database (FastAPI Users only looks first). On an adopted table that
//! already links an account twice the migration refuses, naming the
//! accounts ([`duplicate_links_refusal`]), and changes nothing: which
//! link to keep is the operator's call.
//!
//! Every statement binds text (ids cast to `UUID` on PostgreSQL) and one
//! optional integer (`expires_at`), and returns the row as text (and that
//! integer as a `BIGINT`), so both stores read it with the same code
//! ([`OAuthAccountRow`]).

use portcullis_domain::{OAuthAccount, UserId};

use crate::fields::Dialect;
use crate::{CorruptRow, parse_id};

/// FastAPI Users' table of provider accounts.
pub const OAUTH_ACCOUNT_TABLE: &str = "oauth_account";

/// Portcullis' unique index on `oauth_account (oauth_name, account_id)`.
pub const OAUTH_ACCOUNT_UNIQUE_INDEX: &str = "ix_oauth_account_oauth_name_account_id";

/// The DDL of `oauth_account` and its two indexes as FastAPI Users'
/// SQLAlchemy adapter creates them on `dialect` (column order, types,
/// constraint and index order as SQLAlchemy sends them), idempotent
/// (`IF NOT EXISTS`): an existing table, FastAPI Users' own, is kept with
/// its rows. Each statement ends with `;`.
pub fn create_oauth_account_table(dialect: Dialect) -> [&'static str; 3] {
    match dialect {
        Dialect::Sqlite => [
            "CREATE TABLE IF NOT EXISTS oauth_account (
	id CHAR(36) NOT NULL,
	user_id CHAR(36) NOT NULL,
	oauth_name VARCHAR(100) NOT NULL,
	access_token VARCHAR(1024) NOT NULL,
	expires_at INTEGER,
	refresh_token VARCHAR(1024),
	account_id VARCHAR(320) NOT NULL,
	account_email VARCHAR(320) NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
);",
            "CREATE INDEX IF NOT EXISTS ix_oauth_account_account_id ON oauth_account (account_id);",
            "CREATE INDEX IF NOT EXISTS ix_oauth_account_oauth_name ON oauth_account (oauth_name);",
        ],
        Dialect::Postgres => [
            r#"CREATE TABLE IF NOT EXISTS oauth_account (
	id UUID NOT NULL,
	user_id UUID NOT NULL,
	oauth_name VARCHAR(100) NOT NULL,
	access_token VARCHAR(1024) NOT NULL,
	expires_at INTEGER,
	refresh_token VARCHAR(1024),
	account_id VARCHAR(320) NOT NULL,
	account_email VARCHAR(320) NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
);"#,
            "CREATE INDEX IF NOT EXISTS ix_oauth_account_oauth_name ON oauth_account (oauth_name);",
            "CREATE INDEX IF NOT EXISTS ix_oauth_account_account_id ON oauth_account (account_id);",
        ],
    }
}

/// Portcullis' [`OAUTH_ACCOUNT_UNIQUE_INDEX`], on both dialects. Run after
/// [`duplicate_links_sql`] found nothing.
pub const CREATE_OAUTH_ACCOUNT_UNIQUE_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS ix_oauth_account_oauth_name_account_id ON oauth_account (oauth_name, account_id);";

/// The provider accounts linked more than once, one row each: text
/// columns `oauth_name`, `account_id` and the number of links (as text),
/// ordered. Same SQL on both dialects.
pub fn duplicate_links_sql() -> &'static str {
    "SELECT oauth_name, account_id, CAST(count(*) AS TEXT) AS links FROM oauth_account \
     GROUP BY oauth_name, account_id HAVING count(*) > 1 ORDER BY oauth_name, account_id"
}

/// How many duplicated accounts a refusal names.
const EXAMPLES: usize = 5;

/// The migration's refusal when `duplicates` (from [`duplicate_links_sql`]:
/// provider, account id, number of links) is not empty: names the first
/// few and says what to do. `None` when there is none.
pub fn duplicate_links_refusal(duplicates: &[(String, String, String)]) -> Option<String> {
    if duplicates.is_empty() {
        return None;
    }
    let shown = duplicates
        .iter()
        .take(EXAMPLES)
        .map(|(name, id, links)| format!("{name} account {id:?}: {links} links"))
        .collect::<Vec<_>>()
        .join("; ");
    let more = duplicates.len().saturating_sub(EXAMPLES);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{} provider account(s) are linked more than once in oauth_account ({shown}{more}); \
         Portcullis links each provider account to one user (unique index {OAUTH_ACCOUNT_UNIQUE_INDEX}). \
         Nothing was changed. Delete the extra rows (SELECT * FROM oauth_account WHERE \
         (oauth_name, account_id) IN ({})), then migrate again",
        duplicates.len(),
        "SELECT oauth_name, account_id FROM oauth_account GROUP BY 1, 2 HAVING count(*) > 1"
    ))
}

/// Parameter `n` holding an id as text, as the column compares it.
fn id_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("CAST(${n} AS UUID)"),
    }
}

/// Parameter `n` holding text.
fn text_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    }
}

/// Parameter `n` holding `expires_at` (a 64-bit integer or null).
fn expires_param(n: u8, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("CAST(${n} AS INTEGER)"),
    }
}

/// The columns a lookup returns, in [`OAuthAccountRow`]'s order: text,
/// except `expires_at` (`BIGINT`, nullable) and `refresh_token` (nullable).
fn row_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "id, user_id, oauth_name, access_token, expires_at, refresh_token, account_id, account_email"
        }
        Dialect::Postgres => {
            "CAST(id AS TEXT) AS id, CAST(user_id AS TEXT) AS user_id, CAST(oauth_name AS TEXT) AS oauth_name, \
             CAST(access_token AS TEXT) AS access_token, CAST(expires_at AS BIGINT) AS expires_at, \
             CAST(refresh_token AS TEXT) AS refresh_token, CAST(account_id AS TEXT) AS account_id, \
             CAST(account_email AS TEXT) AS account_email"
        }
    }
}

/// Links an account: `$1` id, `$2` user id, `$3` oauth_name, `$4`
/// access_token, `$5` expires_at (integer or null), `$6` refresh_token
/// (text or null), `$7` account_id, `$8` account_email. A provider
/// account already linked violates [`OAUTH_ACCOUNT_UNIQUE_INDEX`] (as a
/// duplicate id the primary key: `Conflict`), an unknown user the foreign
/// key (`NotFound`).
pub fn add_oauth_account_sql(dialect: Dialect) -> String {
    format!(
        "INSERT INTO oauth_account (id, user_id, oauth_name, access_token, expires_at, \
         refresh_token, account_id, account_email) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
        id_param(1, dialect),
        id_param(2, dialect),
        text_param(3, dialect),
        text_param(4, dialect),
        expires_param(5, dialect),
        text_param(6, dialect),
        text_param(7, dialect),
        text_param(8, dialect),
    )
}

/// The account `$2` (account_id) at provider `$1` (oauth_name): zero or
/// one row (one probe of [`OAUTH_ACCOUNT_UNIQUE_INDEX`]).
pub fn get_oauth_account_sql(dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM oauth_account WHERE oauth_name = {} AND account_id = {}",
        row_columns(dialect),
        text_param(1, dialect),
        text_param(2, dialect)
    )
}

/// Every account of the user `$1`, by `oauth_name`, then `account_id`
/// (byte order on both dialects).
pub fn oauth_accounts_of_sql(dialect: Dialect) -> String {
    let order = match dialect {
        Dialect::Sqlite => "oauth_name, account_id",
        Dialect::Postgres => r#"oauth_name COLLATE "C", account_id COLLATE "C""#,
    };
    format!(
        "SELECT {} FROM oauth_account WHERE user_id = {} ORDER BY {order}",
        row_columns(dialect),
        id_param(1, dialect)
    )
}

/// Replaces the tokens, expiry and e-mail of the row `$5` (id): `$1`
/// access_token, `$2` expires_at, `$3` refresh_token, `$4`
/// account_email — the columns FastAPI Users' `update_oauth_account`
/// writes. No row changed means no such row (`NotFound`).
pub fn update_oauth_account_sql(dialect: Dialect) -> String {
    format!(
        "UPDATE oauth_account SET access_token = {}, expires_at = {}, refresh_token = {}, \
         account_email = {} WHERE id = {}",
        text_param(1, dialect),
        expires_param(2, dialect),
        text_param(3, dialect),
        text_param(4, dialect),
        id_param(5, dialect)
    )
}

/// One row of `oauth_account` as the statements return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthAccountRow {
    /// `id`, hyphenated.
    pub id: String,
    /// `user_id`, hyphenated.
    pub user_id: String,
    /// `oauth_name`.
    pub oauth_name: String,
    /// `access_token`.
    pub access_token: String,
    /// `expires_at`.
    pub expires_at: Option<i64>,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// `account_id`.
    pub account_id: String,
    /// `account_email`.
    pub account_email: String,
}

impl TryFrom<OAuthAccountRow> for OAuthAccount {
    type Error = CorruptRow;

    /// A row another program wrote badly (an id that is no UUID) is a
    /// [`CorruptRow`].
    fn try_from(row: OAuthAccountRow) -> Result<Self, CorruptRow> {
        Ok(OAuthAccount {
            id: parse_id(&row.id)?,
            user_id: UserId::from_uuid(parse_id(&row.user_id)?),
            oauth_name: row.oauth_name,
            access_token: row.access_token,
            expires_at: row.expires_at,
            refresh_token: row.refresh_token,
            account_id: row.account_id,
            account_email: row.account_email,
        })
    }
}

impl From<&OAuthAccount> for OAuthAccountRow {
    fn from(account: &OAuthAccount) -> Self {
        Self {
            id: account.id.hyphenated().to_string(),
            user_id: account.user_id.as_uuid().hyphenated().to_string(),
            oauth_name: account.oauth_name.clone(),
            access_token: account.access_token.clone(),
            expires_at: account.expires_at,
            refresh_token: account.refresh_token.clone(),
            account_id: account.account_id.clone(),
            account_email: account.account_email.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddl_of(fixture: &str) -> Vec<String> {
        fixture
            .split(";\n")
            .map(|s| {
                s.lines()
                    .filter(|l| !l.starts_with("--"))
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The DDL is FastAPI Users' own as captured from it, `IF NOT EXISTS`
    /// added.
    #[test]
    fn the_ddl_is_fastapi_users_own() {
        for (dialect, fixture) in [
            (
                Dialect::Sqlite,
                include_str!("../../../tests/fixtures/fastapi_users_sql/sqlite_oauth_schema.sql"),
            ),
            (
                Dialect::Postgres,
                include_str!("../../../tests/fixtures/fastapi_users_sql/postgres_oauth_schema.sql"),
            ),
        ] {
            let ours: Vec<String> = create_oauth_account_table(dialect)
                .iter()
                .map(|s| {
                    s.trim_end_matches(';')
                        .replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
                        .replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
                })
                .collect();
            assert_eq!(ours, ddl_of(fixture), "{dialect:?}");
        }
    }

    #[test]
    fn a_row_round_trips() {
        let account = OAuthAccount {
            id: uuid::Uuid::new_v4(),
            user_id: UserId::random(),
            oauth_name: "github".into(),
            access_token: "t".into(),
            expires_at: Some(1),
            refresh_token: None,
            account_id: "42".into(),
            account_email: "a@example.com".into(),
        };
        let row = OAuthAccountRow::from(&account);
        assert_eq!(OAuthAccount::try_from(row), Ok(account));
        let bad = OAuthAccountRow {
            id: "nope".into(),
            ..OAuthAccountRow::from(&OAuthAccount {
                id: uuid::Uuid::nil(),
                user_id: UserId::random(),
                oauth_name: String::new(),
                access_token: String::new(),
                expires_at: None,
                refresh_token: None,
                account_id: String::new(),
                account_email: String::new(),
            })
        };
        assert!(matches!(
            OAuthAccount::try_from(bad),
            Err(CorruptRow::Id { .. })
        ));
    }

    #[test]
    fn the_refusal_names_the_accounts() {
        assert_eq!(duplicate_links_refusal(&[]), None);
        let dups: Vec<(String, String, String)> = (0..7)
            .map(|i| ("github".to_owned(), format!("{i}"), "2".to_owned()))
            .collect();
        let text = duplicate_links_refusal(&dups).unwrap();
        assert!(text.starts_with("7 provider account(s)"), "{text}");
        assert!(text.contains("github account \"4\": 2 links"), "{text}");
        assert!(!text.contains("\"5\""), "{text}");
        assert!(text.contains("and 2 more"), "{text}");
        assert!(text.contains(OAUTH_ACCOUNT_UNIQUE_INDEX), "{text}");
    }
}
