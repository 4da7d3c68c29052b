-- Failed-login and mail counts per address (ThrottleLedger), shared by
-- every instance on this database: one row per (kind, key) window.
-- `window_start` is unix time in milliseconds. FastAPI Users ignores this
-- table. The same DDL as store-sql-common's CREATE_THROTTLE_TABLE (a test
-- of this crate checks that they agree).
CREATE TABLE IF NOT EXISTS portcullis_throttle (
	"kind" VARCHAR(32) NOT NULL,
	"key" VARCHAR(320) NOT NULL,
	"window_start" BIGINT NOT NULL,
	"count" INTEGER NOT NULL,
	PRIMARY KEY ("kind", "key")
);
-- purge: every window of one kind started before a cutoff.
CREATE INDEX IF NOT EXISTS ix_portcullis_throttle_kind_window_start ON portcullis_throttle ("kind", "window_start");
