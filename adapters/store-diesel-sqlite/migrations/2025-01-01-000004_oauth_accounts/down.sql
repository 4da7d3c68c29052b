-- Drops Portcullis' unique index; FastAPI Users' table (and its links) stay.
DROP INDEX IF EXISTS ix_oauth_account_oauth_name_account_id;
