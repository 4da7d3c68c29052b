-- Destroys every user. Never run by Portcullis itself.
DROP INDEX IF EXISTS ix_user_email;
DROP TABLE IF EXISTS user;
