-- Issue 16 (scale): an index on the user of each opaque access token.
--
-- FastAPI Users' accesstoken table has none, so finding one user's tokens
-- read the whole table: ending a user's sessions (sign-out everywhere, a
-- password change or reset, deactivation: DELETE FROM accesstoken WHERE
-- user_id = …) and the ON DELETE CASCADE of a user's deletion. With a
-- million sessions that is a scan of a million rows under the write lock.
-- FastAPI Users ignores the index (its own DELETEs use it too). The same
-- DDL as store-sql-common's CREATE_ACCESS_TOKEN_USER_INDEX (a test checks).
CREATE INDEX IF NOT EXISTS ix_portcullis_accesstoken_user_id ON accesstoken (user_id);
