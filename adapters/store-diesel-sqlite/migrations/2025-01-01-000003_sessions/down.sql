-- Drops every session; FastAPI Users' sessions too if it made the table.
DROP TABLE IF EXISTS accesstoken;
ALTER TABLE "user" DROP COLUMN portcullis_session_stamp;
