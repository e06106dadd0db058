-- CONCURRENTLY cannot run in a transaction: dbops runs this file as golang-migrate does.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_events_start_time ON events (start_time);
