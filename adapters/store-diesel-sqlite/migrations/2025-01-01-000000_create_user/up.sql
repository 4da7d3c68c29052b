-- The table FastAPI Users' `SQLAlchemyBaseUserTableUUID` creates on SQLite,
-- plus `role`, so that a database a FastAPI Users service made is adopted in
-- place and a database Portcullis made can be read by FastAPI Users.
--
-- `IF NOT EXISTS`: an existing FastAPI Users table is kept as it is, rows and
-- all. (If it has no `role` column, `SqliteUserStore::migrate` has added one,
-- `VARCHAR(20) NOT NULL DEFAULT 'student'`, before this runs.)
--
-- `id` is the UUID as FastAPI Users writes it on SQLite: 36 characters,
-- hyphenated, lowercase. Booleans are 0 and 1.
CREATE TABLE IF NOT EXISTS user (
	id CHAR(36) NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password VARCHAR(1024) NOT NULL,
	is_active BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	is_verified BOOLEAN NOT NULL,
	role VARCHAR(20) NOT NULL DEFAULT 'student',
	PRIMARY KEY (id)
);

-- FastAPI Users' own index: unique on the address exactly as stored.
CREATE UNIQUE INDEX IF NOT EXISTS ix_user_email ON user (email);
