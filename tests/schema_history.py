"""A migration history that creates one or more of every kind of object the schema reader
reads, with no extension beyond plpgsql (the wheel's server has none), so the same files
can be applied on every supported server and read the same."""

HISTORY = {
    "1_base.up.sql": """
CREATE SCHEMA audit;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TYPE audit.span AS RANGE (subtype = integer);
CREATE TYPE pair AS (left_side integer, right_side text);
CREATE DOMAIN positive AS integer NOT NULL DEFAULT 1 CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE SEQUENCE ticket_numbers AS integer START 100 INCREMENT 5 MAXVALUE 100000 CACHE 2 CYCLE;
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    age integer CHECK (age > 0),
    mood mood DEFAULT 'happy',
    score positive,
    name_upper text GENERATED ALWAYS AS (upper(email)) STORED,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNLOGGED TABLE audit.scratchpad (id serial PRIMARY KEY, note text);
""",
    "2_events.up.sql": """
CREATE TABLE events (
    id bigserial,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    starts_at timestamptz NOT NULL,
    PRIMARY KEY (id, starts_at)
) PARTITION BY RANGE (starts_at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX idx_events_start ON events (starts_at);
CREATE INDEX users_lower_email ON users (lower(email)) WHERE age IS NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_email_shape CHECK (email LIKE '%@%') NOT VALID;
""",
    "3_code.up.sql": """
CREATE FUNCTION adult(age integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT age >= 18 $$;
CREATE FUNCTION audit.touch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    NEW.created_at := now();
    RETURN NEW;
END
$$;
CREATE PROCEDURE forget(who bigint) LANGUAGE sql AS $$ DELETE FROM users WHERE id = who $$;
CREATE TRIGGER users_touch BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION audit.touch();
CREATE VIEW adults AS SELECT id, email FROM users WHERE adult(age);
CREATE MATERIALIZED VIEW user_counts AS SELECT mood, count(*) AS n FROM users GROUP BY mood;
CREATE UNIQUE INDEX user_counts_mood ON user_counts (mood);
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON users FOR SELECT TO PUBLIC USING (id > 0);
""",
    # cannot run in a transaction: applied as golang-migrate applies it, here and in the scratch database
    "4_concurrently.up.sql": "CREATE INDEX CONCURRENTLY users_created_at ON users (created_at DESC);",
}

# Two tables, then a unique index built CONCURRENTLY: the history whose third file fails (and
# leaves an INVALID index) when two users share an email. Schema-version detection and recovery
# both start from it.
TWO_TABLES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_events.up.sql": "CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));",
    "2_events.down.sql": "DROP TABLE events;",
}
UNIQUE_EMAIL = {"3_unique_email.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY users_email_unique ON users (email);",
                "3_unique_email.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_email_unique;"}
