-- Fuzzy title search. This migration is the demo's incident: gin_trgm_ops comes from the
-- pg_trgm extension, which nothing here creates, so it fails wherever pg_trgm is not already
-- installed. CONCURRENTLY cannot run in a transaction, so it runs under golang-migrate's
-- dirty-flag protocol and its failure leaves the database dirty at this version.
CREATE INDEX CONCURRENTLY idx_events_title_trgm ON events USING gin (title gin_trgm_ops);
