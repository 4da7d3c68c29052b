-- Social login (issue 14): FastAPI Users' table of provider accounts,
-- exactly as its SQLAlchemy adapter (SQLAlchemyBaseOAuthAccountTableUUID)
-- creates it on SQLite: `id` and `user_id` are UUIDs as hyphenated
-- lowercase text. IF NOT EXISTS: a FastAPI Users database's table is kept
-- with its links. The same DDL as store-sql-common's
-- create_oauth_account_table(Sqlite) (a test checks). The cascade needs
-- PRAGMA foreign_keys=ON, which every connection of the store sets.
CREATE TABLE IF NOT EXISTS oauth_account (
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
);
CREATE INDEX IF NOT EXISTS ix_oauth_account_account_id ON oauth_account (account_id);
CREATE INDEX IF NOT EXISTS ix_oauth_account_oauth_name ON oauth_account (oauth_name);

-- Portcullis' own: one provider account is linked at most once, whoever
-- writes. On an adopted table that links one twice, the migration refuses
-- before this point, naming the accounts (migrate.rs), and changes nothing.
CREATE UNIQUE INDEX IF NOT EXISTS ix_oauth_account_oauth_name_account_id ON oauth_account (oauth_name, account_id);
