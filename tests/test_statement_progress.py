"""Long statements report their progress while a migration runs, and a failed CREATE INDEX
CONCURRENTLY names the INVALID index it left: real PostgreSQL, real index builds.

A build is held half-way, without a sleep: the index expression calls ``held(id)``, which at row
HOLD_AT waits for an advisory lock the test holds, so the build stands in "building index:
scanning table" with about half the table's blocks done for exactly as long as the test keeps
the lock. A concurrent build is held before it starts by another session's open write
transaction ("waiting for writers before build"). Each is released once what a user would see
was seen.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg
import pytest

from commands import grammar
from commands.identity import Actor
from commands.migrate.results import MigrateResult
from commands.pg.statement_progress import Watched, sample
from commands.results import Outcome, Progress
from commands.sessions import InvalidIndex, StatementProgress
from tests.conftest import wait_for

LOCK_KEY = 4242
HOLD_AT = 5000
# The function lies about being IMMUTABLE on purpose (an index expression must be): an index build
# calls it for every row, and at row HOLD_AT it waits for the test's advisory lock.
SETUP = f"""
CREATE FUNCTION held(n bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF n = {HOLD_AT} THEN
        PERFORM pg_advisory_lock_shared({LOCK_KEY});
        PERFORM pg_advisory_unlock_shared({LOCK_KEY});
    END IF;
    RETURN n;
END $$;
CREATE TABLE events (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO events SELECT g, 'user' || g || '@example.com' FROM generate_series(1, {2 * HOLD_AT}) g;
"""
FILES = {
    "1_events.up.sql": SETUP,
    "1_events.down.sql": "DROP TABLE events; DROP FUNCTION held(bigint);",
    "2_held_index.up.sql": "CREATE INDEX CONCURRENTLY events_held ON events (held(id));",
    "2_held_index.down.sql": "DROP INDEX CONCURRENTLY events_held;",
}
# Long enough that no lock wait of a held build times out on a loaded machine.
SLOW = {"lock_timeout": "5min"}


@contextmanager
def holding(url: str) -> Iterator[psycopg.Connection]:
    """The advisory lock ``held`` waits for, held by a session of the test until the block ends."""
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            yield holder
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


class Heard:
    """The executor's progress callback: every Progress, from whichever thread says it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.all: list[Progress] = []

    def __call__(self, progress: Progress) -> None:
        with self.lock:
            self.all.append(progress)

    def statements(self) -> list[StatementProgress]:
        with self.lock:
            return [p.statement for p in self.all if p.statement is not None]


def run_in_background(bed, text: str, heard: Heard) -> tuple[threading.Thread, list]:
    done: list = []
    thread = threading.Thread(target=lambda: done.append(
        bed.executor.run(grammar.parse(text), Actor(user="alice"), progress=heard)), daemon=True)
    thread.start()
    return thread, done


def building(heard: Heard) -> StatementProgress | None:
    return next((s for s in heard.statements() if s.phase == "building index: scanning table"), None)


def held_build_is_reported(make_bed, **env) -> StatementProgress:
    """Run the held concurrent build; return what the progress said while it stood half-way."""
    bed = make_bed(FILES, **SLOW, **env)
    assert bed.run("migrate up 1").outcome is Outcome.DONE
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, "migrate up", heard)
        seen = wait_for(lambda: building(heard), what="the build's progress, half-way")
    thread.join(timeout=60)
    assert done and done[0].outcome is Outcome.DONE, done
    assert bed.state() == (2, False)
    return seen


def test_an_index_build_reports_its_phase_blocks_and_percent_while_it_runs(make_bed):
    seen = held_build_is_reported(make_bed)
    assert seen.statement == "CREATE INDEX CONCURRENTLY" and seen.line == 1
    assert seen.command == "CREATE INDEX CONCURRENTLY" and seen.relation == "events"
    assert seen.unit == "blocks" and 0 < seen.done < seen.total  # held at row HOLD_AT of 2 * HOLD_AT


def test_the_progress_of_a_statement_is_cleared_when_it_ends(make_bed):
    bed = make_bed(FILES, **SLOW)
    bed.run("migrate up 1")
    bed.write({"2_held_index.up.sql": "CREATE INDEX events_held ON events (held(id));\n"
                                      "CREATE TABLE after_it (id int);"})
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, "migrate up", heard)
        seen = wait_for(lambda: building(heard), what="the transactional build's progress")
    thread.join(timeout=60)
    assert seen.statement == "CREATE INDEX" and seen.line == 1  # a transactional file: its statement's own line
    with heard.lock:
        last_apply = [p for p in heard.all if p.step == "apply"][-1]
    assert last_apply.statement is None, "a finished statement's progress is not left on show"
    assert done[0].outcome is Outcome.DONE


def test_a_concurrent_build_waiting_for_a_writer_names_the_writers_pid(make_bed):
    bed = make_bed(FILES, **SLOW)
    bed.run("migrate up 1")
    bed.write({"2_held_index.up.sql": "CREATE INDEX CONCURRENTLY events_email ON events (email);"})
    heard = Heard()
    with psycopg.connect(bed.url) as writer:  # a transaction that wrote to the table, left open
        writer.execute("INSERT INTO events VALUES (0, 'writer@example.com')")
        writer_pid = writer.info.backend_pid
        thread, done = run_in_background(bed, "migrate up", heard)
        waiting = wait_for(lambda: next((s for s in heard.statements() if s.waiting_for == writer_pid), None),
                           what="the build waiting for the writer")
        writer.commit()
    thread.join(timeout=60)
    assert waiting.phase == "waiting for writers before build"
    assert (waiting.done, waiting.total, waiting.unit) == (0, 1, "transactions")
    assert done[0].outcome is Outcome.DONE


def test_a_statement_no_progress_view_covers_says_so(make_bed):
    """A table rewrite (ALTER COLUMN … TYPE) has no view in any PostgreSQL: only its time is told."""
    bed = make_bed(FILES, **SLOW, lint_block_severity="none")  # a type change is a lint finding: not the point
    bed.run("migrate up 1")
    bed.write({"2_held_index.up.sql": "ALTER TABLE events ALTER COLUMN id TYPE numeric USING held(id);"})
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, "migrate up", heard)
        seen = wait_for(lambda: next(iter(heard.statements()), None), what="the rewrite's sample")
    thread.join(timeout=60)
    assert (seen.statement, seen.seen, seen.line) == ("ALTER TABLE", "no_view", 1)
    assert done[0].outcome is Outcome.DONE


def test_the_least_privilege_role_sees_its_own_builds_progress(make_bed, app_role):
    """Without pg_read_all_stats a role sees only its own role's rows: the sampler is that role."""
    seen = held_build_is_reported(make_bed, url=app_role.url)
    assert seen.unit == "blocks" and 0 < seen.done < seen.total


def test_another_roles_session_is_reported_hidden_not_as_no_progress(make_bed, app_role):
    bed = make_bed(FILES, **SLOW)  # the superuser runs the build; the least-privilege role samples it
    bed.run("migrate up 1")
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, "migrate up", heard)
        wait_for(lambda: building(heard), what="the build, half-way")
        pid = bed.query("SELECT pid FROM pg_stat_progress_create_index WHERE datname = current_database()")[0][0]
        with psycopg.connect(app_role.url, autocommit=True, row_factory=psycopg.rows.dict_row) as other:
            what = Watched(statement="CREATE INDEX CONCURRENTLY", line=1, views=("create_index",))
            hidden = sample(other, pid, what, 3.0, other.info.server_version)
    thread.join(timeout=60)
    assert hidden.seen == "hidden" and hidden.phase is None


def held_restore_is_reported(make_bed) -> tuple[StatementProgress, list[Progress]]:
    """Restore a snapshot whose index build is held half-way; what the progress said of it then, and
    every progress with a sample. In place: advisory locks are per database, so a new-database
    restore (the same sampling, into a fresh database) could not be held so."""
    bed = make_bed(FILES, **SLOW, restore_mode="in-place")
    assert bed.run("migrate up").outcome is Outcome.DONE  # events_held is built (nothing holds it yet)
    name = bed.run('snapshot create --reason "before the test"').snapshot.name
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, f"snapshot restore {name}", heard)
        seen = wait_for(lambda: building(heard), what="the restore's index build, half-way")
    thread.join(timeout=60)
    assert done and done[0].outcome is Outcome.DONE, done
    with heard.lock:
        return seen, [p for p in heard.all if p.statement is not None]


def test_a_restore_reports_the_index_it_rebuilds_while_it_runs(make_bed):
    """psql restores the snapshot; its session, found by the name dbops gives it, is sampled."""
    seen, sampled = held_restore_is_reported(make_bed)
    # The table is psql's, not yet committed: its name is not for another session to read.
    assert (seen.statement, seen.line, seen.command, seen.relation) == ("The restore", None, "CREATE INDEX", None)
    assert 0 < seen.done < seen.total
    assert {p.step for p in sampled} == {"restore"}


# --- a failed CREATE INDEX CONCURRENTLY ------------------------------------------------------------

DUPLICATES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n"
                      "INSERT INTO users VALUES (1, 'ana@example.com'), (2, 'ana@example.com');",
    "1_users.down.sql": "DROP TABLE users;",
    "2_unique_email.up.sql": "-- one address, one account\nCREATE UNIQUE INDEX CONCURRENTLY users_email_key "
                             "ON users (email);",
    "2_unique_email.down.sql": "DROP INDEX CONCURRENTLY users_email_key;",
}


def test_a_failed_concurrent_build_names_the_invalid_index_it_left(make_bed):
    bed = make_bed(DUPLICATES)
    result = bed.run("migrate up")
    assert isinstance(result, MigrateResult) and result.outcome is Outcome.FAILED
    assert bed.state() == (2, True)
    assert result.failure.error.invalid_indexes == (
        InvalidIndex(schema="public", name="users_email_key", table="users"),)
    # As the catalog says, not the error text: the index is there, and invalid.
    assert bed.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_key'::regclass") == [(False,)]


def test_a_failed_unnamed_concurrent_build_is_found_by_its_table(make_bed):
    bed = make_bed({**DUPLICATES, "2_unique_email.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY ON users (email);"})
    result = bed.run("migrate up")
    (index,) = result.failure.error.invalid_indexes
    assert (index.schema, index.table) == ("public", "users") and index.name.startswith("users_email")


def test_a_concurrent_build_that_failed_before_making_its_index_names_none(make_bed):
    bed = make_bed({**DUPLICATES, "2_unique_email.up.sql": "CREATE INDEX CONCURRENTLY users_x ON users (nowhere);"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and result.failure.error.invalid_indexes == ()


def test_the_fix_the_result_gives_clears_the_invalid_index_and_the_retry_succeeds(make_bed):
    from bot.slack.blocks.statements import drop_statement
    bed = make_bed(DUPLICATES)
    (index,) = bed.run("migrate up").failure.error.invalid_indexes
    bed.execute(drop_statement(index))
    assert bed.run("migrate force 1").outcome is Outcome.DONE
    bed.execute("DELETE FROM users WHERE id = 2")
    assert bed.run("migrate up").outcome is Outcome.DONE
    assert bed.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_key'::regclass") == [(True,)]



@pytest.mark.parametrize(("text", "label", "views", "otherwise"), [
    ("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)", "CREATE UNIQUE INDEX CONCURRENTLY", ("create_index",), "waiting"),
    ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY", ("create_index",), "waiting"),
    ("CLUSTER t USING i", "CLUSTER", ("cluster",), "waiting"),
    ("VACUUM (FULL, ANALYZE) t", "VACUUM FULL", ("cluster", "analyze"), "waiting"),
    ("VACUUM t", "VACUUM", ("vacuum",), "waiting"),
    ("ANALYZE t", "ANALYZE", ("analyze",), "waiting"),
    ("COPY t FROM '/tmp/t.csv'", "COPY", ("copy",), "waiting"),
    ("ALTER TABLE t ADD PRIMARY KEY (a)", "ALTER TABLE", ("create_index",), "no_view"),
    ("UPDATE t SET a = 1", "UPDATE", (), "waiting"),
    ("REFRESH MATERIALIZED VIEW m", "REFRESH MATERIALIZED VIEW", (), "waiting"),
])
def test_each_statement_is_named_and_matched_to_the_views_that_report_it(text, label, views, otherwise):
    from commands.pg.statement_progress import watched
    from commands.sql.sqlscan import scan
    assert watched(scan(text).statements[0]) == Watched(statement=label, line=1, views=views, otherwise=otherwise)


def test_a_file_sent_whole_is_named_by_its_one_statement_or_as_the_file():
    from commands.pg.statement_progress import WHOLE_FILE, watched_file
    from commands.sql.sqlscan import scan
    one = watched_file(scan("BEGIN;\n\nCREATE INDEX i ON t (a);\nCOMMIT;"))
    assert (one.statement, one.line) == ("CREATE INDEX", 3)
    many = watched_file(scan("BEGIN; UPDATE t SET a = 1; CREATE INDEX i ON t (a); COMMIT;"))
    assert (many.statement, many.line, many.views, many.otherwise) == (WHOLE_FILE, None, ("create_index",), "no_view")
