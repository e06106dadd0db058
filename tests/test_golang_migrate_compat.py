"""dbops and golang-migrate's CLI read and write the same schema_migrations, take the same lock.

The CLI is not installable on this machine, so its side is played by the exact statements
its postgres driver issues (database/postgres/postgres.go: ensureVersionTable, SetVersion,
Lock), and its lock key by a line-for-line port of database.GenerateAdvisoryLockId.
"""

from __future__ import annotations

import binascii
import threading
from urllib.parse import urlsplit

import psycopg
import pytest

from commands.errors import VersionTableError
from commands.pg.lock import golang_migrate_lock_key
from commands.results import Outcome, Reason, Refusal

CLI_CREATE = 'CREATE TABLE IF NOT EXISTS "public"."schema_migrations" (version bigint not null primary key, dirty boolean not null)'
FILES = {"1_a.up.sql": "CREATE TABLE a ();", "1_a.down.sql": "DROP TABLE a;",
         "2_b.up.sql": "CREATE TABLE b ();", "2_b.down.sql": "DROP TABLE b;",
         "3_c.up.sql": "CREATE TABLE c ();", "3_c.down.sql": "DROP TABLE c;"}


def cli_set_version(conn: psycopg.Connection, version: int, dirty: bool) -> None:
    """golang-migrate's SetVersion: TRUNCATE, then INSERT unless version is -1 and clean."""
    with conn.transaction():
        conn.execute('TRUNCATE "public"."schema_migrations"')
        if version >= 0 or (version == -1 and dirty):
            conn.execute('INSERT INTO "public"."schema_migrations" (version, dirty) VALUES (%s, %s)', (version, dirty))


def go_lock_id(database_name: str, *additional: str) -> int:
    """GenerateAdvisoryLockId: strings.Join(append(additionalNames, databaseName), "\\x00"),
    crc32.ChecksumIEEE, times the uint32 salt with Go's wrap-around."""
    joined = "\x00".join([*additional, database_name]) if additional else database_name
    return (binascii.crc32(joined.encode()) * 1486364155) & 0xFFFFFFFF


def test_lock_key_matches_golang_migrate_for_the_cli_database_name():
    url = "postgres://deploy:pw@db.internal:5432/togather?sslmode=disable"
    # The CLI's DatabaseName is the URL path, leading slash included.
    assert golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=url) == \
        go_lock_id("/togather", "public", "schema_migrations")
    assert golang_migrate_lock_key(schema="public", table="schema_migrations",
                                   database_url="postgres://u:p@h/postgres") == 3280485947


@pytest.mark.parametrize("version,dirty", [(3, True), (2, False), (0, False)])
def test_a_row_written_by_the_cli_is_read_correctly(make_bed, version, dirty):
    bed = make_bed(FILES)
    with psycopg.connect(bed.url, autocommit=True) as conn:
        conn.execute(CLI_CREATE.replace('"public".', ""))
        cli_set_version(conn, version, dirty)
    if version == 0:
        bed.write({"0_init.up.sql": "SELECT 1;"})
    status = bed.run("migrate status")
    assert (status.state.version, status.state.dirty) == (version, dirty)


def test_the_cli_dirty_nil_version_row_reads_as_no_version_dirty(make_bed):
    # golang-migrate#330: a failed down from the first version leaves (-1, true).
    bed = make_bed(FILES)
    with psycopg.connect(bed.url, autocommit=True) as conn:
        conn.execute(CLI_CREATE)
        cli_set_version(conn, -1, True)
    result = bed.run("migrate up")
    assert isinstance(result, Refusal) and result.reason is Reason.DIRTY
    assert (result.state.version, result.state.dirty) == (-1, True)
    bed.run("migrate force -1")
    assert bed.state() is None


def test_the_table_dbops_creates_is_the_one_the_cli_creates(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up")
    columns = bed.query("""SELECT column_name, data_type, is_nullable FROM information_schema.columns
                           WHERE table_name = 'schema_migrations' ORDER BY ordinal_position""")
    assert columns == [("version", "bigint", "NO"), ("dirty", "boolean", "NO")]
    assert bed.query("""SELECT a.attname FROM pg_index i JOIN pg_attribute a
                        ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                        WHERE i.indrelid = 'schema_migrations'::regclass AND i.indisprimary""") == [("version",)]
    # What the CLI's Version() runs: SELECT version, dirty FROM t LIMIT 1 — one row, clean.
    assert bed.query("SELECT version, dirty FROM schema_migrations LIMIT 1") == [(3, False)]
    assert bed.query("SELECT count(*) FROM schema_migrations") == [(1,)]


def test_a_table_made_by_the_guides_reset_procedure_is_used_as_is(make_bed):
    bed = make_bed(FILES)
    bed.execute("""CREATE TABLE schema_migrations (version BIGINT NOT NULL, dirty BOOLEAN NOT NULL, PRIMARY KEY (version));
                 INSERT INTO schema_migrations (version, dirty) VALUES (1, false)""")
    result = bed.run("migrate up")
    assert [s.version for s in result.steps] == [2, 3] and bed.state() == (3, False)


def test_more_than_one_row_is_an_error_that_changes_nothing(make_bed):
    bed = make_bed(FILES)
    bed.execute(CLI_CREATE + "; INSERT INTO schema_migrations VALUES (1, false), (2, false)")
    with pytest.raises(VersionTableError, match="has 2 rows"):
        bed.run("migrate up")
    assert bed.query("SELECT version FROM schema_migrations ORDER BY 1") == [(1,), (2,)]


def test_a_configured_table_name_is_used_for_state_and_lock(make_bed):
    bed = make_bed(FILES, migrations_table="togather_migrations")
    bed.run("migrate up 1")
    assert bed.query("SELECT version, dirty FROM togather_migrations") == [(1, False)]
    assert bed.query("SELECT to_regclass('schema_migrations')") == [(None,)]


def hold_cli_lock(url: str, table: str = "schema_migrations") -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True, application_name="migrate")
    conn.execute("SELECT pg_advisory_lock(%s)", (go_lock_id(urlsplit(url).path, "public", table),))
    return conn


def test_a_held_cli_lock_refuses_with_its_holder_and_changes_nothing(make_bed):
    bed = make_bed(FILES, lock_wait_seconds=0.3)
    with hold_cli_lock(bed.url) as cli:
        cli_pid = cli.info.backend_pid
        result = bed.run("migrate up")
        status = bed.run("migrate status")
    assert isinstance(result, Refusal) and result.reason is Reason.LOCK_HELD
    assert (result.holder.pid, result.holder.application_name) == (cli_pid, "migrate")
    assert result.holder.client == "local socket" and result.holder.since is not None
    assert status.lock_holder.pid == cli_pid
    assert bed.state() is None and bed.tables() == set()
    assert bed.run("migrate up").outcome is Outcome.DONE  # the CLI let go: dbops proceeds


def test_while_dbops_migrates_the_cli_lock_is_taken(make_bed):
    bed = make_bed({"1_slow.up.sql": "SELECT pg_sleep(0.5);"})
    key = go_lock_id(urlsplit(bed.url).path, "public", "schema_migrations")
    thread = threading.Thread(target=bed.run, args=("migrate up",))
    thread.start()
    try:
        with psycopg.connect(bed.url, autocommit=True) as cli:
            # Wait (on a condition, with a deadline) until dbops is inside its migration.
            cli.execute("SET statement_timeout = '10s'")
            cli.execute("""DO $$ BEGIN
                             WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'
                                               AND application_name = 'dbops-test') LOOP
                               PERFORM pg_sleep(0.01), pg_stat_clear_snapshot(); END LOOP; END $$""")
            assert cli.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (False,)
    finally:
        thread.join(timeout=30)
    with psycopg.connect(bed.url, autocommit=True) as cli:
        assert cli.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)  # released after


def test_the_lock_is_released_after_a_failed_migration(make_bed):
    bed = make_bed({"1_bad.up.sql": "SELECT 1/0;"})
    assert bed.run("migrate up").outcome is Outcome.FAILED
    with psycopg.connect(bed.url, autocommit=True) as cli:
        key = go_lock_id(urlsplit(bed.url).path, "public", "schema_migrations")
        assert cli.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)
