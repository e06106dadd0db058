"""What the approver is told a migration file destroys, read from pglast's parse tree (no database)."""

from __future__ import annotations

import pytest

from commands.sql.sqlscan import scan


def loss(sql: str) -> tuple[str, ...]:
    """The descriptions for a file holding one statement."""
    sqlfile = scan(sql)
    assert sqlfile.syntax_error is None and len(sqlfile.statements) == 1
    return sqlfile.statements[0].data_loss


# --- statements that lose nothing ---

@pytest.mark.parametrize("sql", [
    "CREATE TABLE users (id bigint PRIMARY KEY, email text)",
    "ALTER TABLE users ADD COLUMN email text",
    "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    "ALTER TABLE users DROP CONSTRAINT users_email_key",
    "ALTER TABLE users RENAME COLUMN email TO mail",
    "CREATE INDEX users_email ON users (email)",
    "DROP INDEX users_email",
    "DROP INDEX CONCURRENTLY IF EXISTS users_email",
    "DROP VIEW active_users",
    "DROP MATERIALIZED VIEW user_stats",
    "DROP SEQUENCE users_id_seq",
    "DROP FUNCTION f()",
    "DROP SCHEMA archive",
    "DROP SCHEMA IF EXISTS archive RESTRICT",
    "UPDATE users SET email = lower(email)",
    "UPDATE users SET email = NULL WHERE id = 1",
    "INSERT INTO users (id) VALUES (1)",
    "SELECT 1",
    "WITH recent AS (SELECT * FROM events) SELECT count(*) FROM recent",
])
def test_statements_that_keep_all_data_report_nothing(sql: str) -> None:
    assert loss(sql) == ()


def test_statements_inside_do_blocks_and_function_bodies_are_not_reported() -> None:
    assert loss("DO $$ BEGIN DELETE FROM sessions; DROP TABLE users; END $$") == ()
    assert loss("CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$ BEGIN TRUNCATE logs; END $$") == ()
    assert loss("CREATE FUNCTION purge() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM logs; END") == ()


def test_empty_and_invalid_files_report_nothing() -> None:
    assert scan("").data_loss == ()
    assert scan("-- nothing here\n").data_loss == ()
    assert scan("DROP TABLE users; DROP TABLE (").data_loss == ()


# --- DROP TABLE ---

@pytest.mark.parametrize(("sql", "expected"), [
    ("DROP TABLE events", "drops table events"),
    ("DROP TABLE public.users", "drops table public.users"),
    ("DROP TABLE IF EXISTS public.users", "drops table public.users"),
    ("DROP TABLE users CASCADE", "drops table users"),
    ("DROP TABLE a, b", "drops tables a, b"),
    ('DROP TABLE IF EXISTS "User Table", app."Order"', 'drops tables "User Table", app."Order"'),
    ('DROP TABLE "user"', 'drops table "user"'),
    ("DROP TABLE Users", "drops table users"),
])
def test_drop_table_names_every_table_in_one_description(sql: str, expected: str) -> None:
    assert loss(sql) == (expected,)


# --- DROP SCHEMA … CASCADE ---

@pytest.mark.parametrize(("sql", "expected"), [
    ("DROP SCHEMA archive CASCADE", "drops schema archive with everything in it (CASCADE)"),
    ("DROP SCHEMA IF EXISTS archive CASCADE", "drops schema archive with everything in it (CASCADE)"),
    ('DROP SCHEMA archive, "Old Data" CASCADE', 'drops schemas archive, "Old Data" with everything in them (CASCADE)'),
])
def test_drop_schema_cascade_drops_everything_in_it(sql: str, expected: str) -> None:
    assert loss(sql) == (expected,)


# --- ALTER TABLE … DROP COLUMN / ALTER COLUMN … TYPE ---

@pytest.mark.parametrize(("sql", "expected"), [
    ("ALTER TABLE users DROP COLUMN email", ("drops column users.email",)),
    ("ALTER TABLE users DROP email", ("drops column users.email",)),
    ("ALTER TABLE IF EXISTS public.users DROP COLUMN IF EXISTS email CASCADE", ("drops column public.users.email",)),
    ("ALTER TABLE ONLY users DROP COLUMN email", ("drops column users.email",)),
    ('ALTER TABLE "User Table" DROP COLUMN "E-mail"', ('drops column "User Table"."E-mail"',)),
    ("ALTER TABLE users ALTER COLUMN age TYPE bigint", ("changes the type of column users.age",)),
    ("ALTER TABLE users ALTER age SET DATA TYPE int USING age::int", ("changes the type of column users.age",)),
    ("ALTER TABLE public.users DROP COLUMN email, ADD COLUMN mail text, ALTER COLUMN age TYPE smallint",
     ("drops column public.users.email", "changes the type of column public.users.age")),
])
def test_alter_table_reports_each_dropped_or_retyped_column(sql: str, expected: tuple[str, ...]) -> None:
    assert loss(sql) == expected


def test_dropping_a_column_of_a_foreign_table_or_a_type_is_not_reported() -> None:
    assert loss("ALTER FOREIGN TABLE remote_users DROP COLUMN email") == ()
    assert loss("ALTER TYPE address DROP ATTRIBUTE zip") == ()


# --- TRUNCATE ---

@pytest.mark.parametrize(("sql", "expected"), [
    ("TRUNCATE orders", "truncates orders"),
    ("TRUNCATE TABLE orders, order_items", "truncates orders, order_items"),
    ("TRUNCATE ONLY shop.orders RESTART IDENTITY", "truncates shop.orders"),
    ('TRUNCATE "Order Items"', 'truncates "Order Items"'),
    ("TRUNCATE orders CASCADE", "truncates orders and every table with a foreign key to it (CASCADE)"),
    ("TRUNCATE orders, order_items CASCADE",
     "truncates orders, order_items and every table with a foreign key to them (CASCADE)"),
])
def test_truncate_names_every_table_in_one_description(sql: str, expected: str) -> None:
    assert loss(sql) == (expected,)


# --- DELETE ---

@pytest.mark.parametrize(("sql", "expected"), [
    ("DELETE FROM sessions", "deletes rows from sessions (no WHERE: every row)"),
    ("DELETE FROM public.sessions AS s", "deletes rows from public.sessions (no WHERE: every row)"),
    ("DELETE FROM sessions WHERE expires_at < now()", "deletes rows from sessions"),
    ("DELETE FROM ONLY sessions s USING users u WHERE s.user_id = u.id", "deletes rows from sessions"),
    ('DELETE FROM "Sessions" WHERE true', 'deletes rows from "Sessions"'),
])
def test_delete_names_its_table_and_says_when_every_row_goes(sql: str, expected: str) -> None:
    assert loss(sql) == (expected,)


def test_delete_inside_a_with_clause_is_reported() -> None:
    sql = ("WITH moved AS (DELETE FROM events WHERE at < '2020-01-01' RETURNING *) "
           "INSERT INTO events_archive SELECT * FROM moved")
    assert loss(sql) == ("deletes rows from events",)
    assert loss("WITH gone AS (DELETE FROM sessions RETURNING id) SELECT count(*) FROM gone") == (
        "deletes rows from sessions (no WHERE: every row)",)


def test_merge_that_deletes_is_reported_and_one_that_only_updates_is_not() -> None:
    assert loss("MERGE INTO stock s USING returns r ON s.id = r.id WHEN MATCHED THEN DELETE") == (
        "deletes matched rows from stock (MERGE)",)
    assert loss("MERGE INTO stock s USING returns r ON s.id = r.id WHEN MATCHED THEN UPDATE SET n = s.n + r.n") == ()


# --- the file as a whole ---

DOWN_FILE = """\
-- 20260128001_reshape_users.down.sql
-- Undo the reshape.

BEGIN;

CREATE TABLE users_old (id bigint);   -- keeps nothing yet

/* the new columns go */
ALTER TABLE public.users
    DROP COLUMN IF EXISTS email,
    ALTER COLUMN age TYPE integer;

DROP INDEX IF EXISTS users_email;
UPDATE users SET name = '';

TRUNCATE orders, order_items;
DELETE FROM sessions;  DELETE FROM tokens WHERE revoked;

DROP TABLE IF EXISTS "User Table", events;
DROP SCHEMA archive CASCADE;
COMMIT;
"""


def test_file_lists_each_destructive_action_with_the_line_its_statement_starts_on() -> None:
    assert scan(DOWN_FILE).data_loss == (
        (9, "drops column public.users.email"),
        (9, "changes the type of column public.users.age"),
        (16, "truncates orders, order_items"),
        (17, "deletes rows from sessions (no WHERE: every row)"),
        (17, "deletes rows from tokens"),
        (19, 'drops tables "User Table", events'),
        (20, "drops schema archive with everything in it (CASCADE)"),
    )


def test_each_statement_carries_its_own_descriptions() -> None:
    by_kind = [(s.kind, s.data_loss) for s in scan(DOWN_FILE).statements]
    assert by_kind[:4] == [
        ("TransactionStmt", ()),
        ("CreateStmt", ()),
        ("AlterTableStmt", ("drops column public.users.email", "changes the type of column public.users.age")),
        ("DropStmt", ()),
    ]
