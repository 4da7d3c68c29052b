DROP INDEX IF EXISTS ix_user_email_lower;
