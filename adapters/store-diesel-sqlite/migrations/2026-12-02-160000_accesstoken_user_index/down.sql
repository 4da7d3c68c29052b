DROP INDEX IF EXISTS ix_portcullis_accesstoken_user_id;
