-- Sessions (issue 10).
--
-- The session stamp of each user (User::session_stamp), raised whenever
-- every session of the user must end. DEFAULT 0 matters: FastAPI Users
-- inserts users without this column (and ignores it). On an adopted FastAPI
-- Users table, whose CREATE TABLE IF NOT EXISTS above kept it as it was,
-- this adds the column: existing users start at 0.
ALTER TABLE "user" ADD COLUMN portcullis_session_stamp BIGINT NOT NULL DEFAULT 0;

-- FastAPI Users' table of opaque access tokens (its DatabaseStrategy),
-- exactly as its SQLAlchemy adapter (SQLAlchemyBaseAccessTokenTableUUID)
-- creates it on SQLite: `user_id` is the UUID as hyphenated lowercase text,
-- `created_at` UTC as the text 'YYYY-MM-DD HH:MM:SS.ffffff'. IF NOT EXISTS:
-- a FastAPI Users database's table is kept with its sessions. The same DDL
-- as store-sql-common's create_access_token_table(Sqlite) (a test checks).
-- The cascade needs PRAGMA foreign_keys=ON, which every connection of the
-- store sets.
CREATE TABLE IF NOT EXISTS accesstoken (
	user_id CHAR(36) NOT NULL,
	token VARCHAR(43) NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (token),
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
);
CREATE INDEX IF NOT EXISTS ix_accesstoken_created_at ON accesstoken (created_at);
