"""What a failing migration leaves behind, for each way a file can run."""

from __future__ import annotations

import threading

import psycopg

from commands import grammar
from commands.migrate.results import MigrateResult
from commands.results import Outcome, Reason, Refusal

OK = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


def test_failing_migration_leaves_the_previous_version_clean_and_nothing_half_applied(make_bed):
    bed = make_bed({**OK,
                    "2_broken.up.sql": "CREATE TABLE audit (id int);\nALTER TABLE users ADD COLUMN email text;\n"
                                       "ALTER TABLE nope ADD COLUMN x int;\n",
                    "3_after.up.sql": "CREATE TABLE after ();"})
    result = bed.run("migrate up")
    assert isinstance(result, MigrateResult) and result.outcome is Outcome.FAILED
    assert [s.version for s in result.steps] == [1]
    assert result.failure.version == 2 and result.failure.filename == "2_broken.up.sql"
    assert result.failure.error.sqlstate == "42P01" and result.failure.error.line == 3
    assert (result.after.version, result.after.dirty) == (1, False)
    assert bed.state() == (1, False)
    assert bed.tables() == {"users"}  # audit, created before the failing statement, is gone too
    assert bed.query("SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'") == [(0,)]


def test_failing_non_transactional_migration_leaves_the_database_dirty_as_the_cli_does(make_bed):
    bed = make_bed({**OK, "2_index.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY users_missing ON users (nope);",
                    "2_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_missing;"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and result.failure.mode == "no-transaction"
    assert result.failure.error.sqlstate == "42703"
    assert bed.state() == (2, True)
    refused = bed.run("migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.DIRTY
    # The guide's option 3: force the version, then roll it back through its down file.
    bed.run("migrate force 2")
    assert bed.run("migrate down 1").outcome is Outcome.DONE
    assert bed.state() == (1, False)


def test_non_transactional_migration_succeeds_through_the_dirty_protocol(make_bed):
    bed = make_bed({**OK, "2_index.up.sql": "CREATE INDEX CONCURRENTLY users_id ON users (id);"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.DONE and result.steps[-1].mode == "no-transaction"
    assert bed.state() == (2, False)
    assert bed.query("SELECT indexname FROM pg_indexes WHERE indexname = 'users_id'") == [("users_id",)]


def test_file_with_its_own_transaction_runs_whole(make_bed):
    bed = make_bed({**OK, "2_own.up.sql": "BEGIN;\nCREATE TABLE own (id int);\nINSERT INTO own VALUES (1);\nCOMMIT;\n"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.DONE and result.steps[-1].mode == "own-transaction"
    assert bed.state() == (2, False) and bed.query("SELECT id FROM own") == [(1,)]


def test_failing_file_with_its_own_transaction_is_dirty_and_rolled_back(make_bed):
    bed = make_bed({**OK, "2_own.up.sql": "BEGIN;\nCREATE TABLE own (id int);\nINSERT INTO own VALUES ('x');\nCOMMIT;\n"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and result.failure.error.line == 3
    assert bed.state() == (2, True)
    assert "own" not in bed.tables()
    assert bed.run("migrate status").state.dirty  # the connection was left usable


def test_syntax_error_in_any_planned_file_refuses_before_anything_runs(make_bed):
    bed = make_bed({**OK, "2_fine.up.sql": "CREATE TABLE fine ();", "3_typo.up.sql": "CREATE TABEL oops ();"})
    result = bed.run("migrate up")
    assert isinstance(result, Refusal) and result.reason is Reason.SYNTAX_ERROR
    assert [(p.filename, p.line) for p in result.problems] == [("3_typo.up.sql", 1)]
    assert bed.state() is None and bed.tables() == set()


def test_lock_timeout_bounds_a_migration_waiting_on_a_busy_table(make_bed):
    bed = make_bed({**OK, "2_alter.up.sql": "ALTER TABLE users ADD COLUMN email text;"}, lock_timeout="200ms",
                   lock_retries=0, blockers="off")
    bed.run("migrate up 1")
    with psycopg.connect(bed.url) as blocker:  # an application transaction holding the table
        blocker.execute("SELECT * FROM users")
        result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and result.failure.error.sqlstate == "55P03"
    assert bed.state() == (1, False)


def test_statement_timeout_bounds_a_slow_migration(make_bed):
    bed = make_bed({"1_slow.up.sql": "SELECT pg_sleep(5);"}, statement_timeout="100ms")
    result = bed.run("migrate up")
    assert result.failure.error.sqlstate == "57014"
    assert bed.state() is None


def test_a_migration_with_a_non_utf8_file_is_a_clear_error_and_changes_nothing(make_bed):
    bed = make_bed(OK)
    (bed.migrations / "2_latin1.up.sql").write_bytes("INSERT INTO users VALUES (1); -- caf\xe9".encode("latin-1"))
    try:
        bed.run("migrate up")
    except Exception as err:
        assert "2_latin1.up.sql is not valid UTF-8" in str(err)
    else:
        raise AssertionError("expected a SourceError")
    assert bed.state() is None


def test_two_concurrent_ups_apply_each_migration_exactly_once(make_bed):
    bed = make_bed({"1_log.up.sql": "CREATE TABLE log (n int);",
                    "2_slow.up.sql": "SELECT pg_sleep(0.3); INSERT INTO log VALUES (2);",
                    "3_more.up.sql": "INSERT INTO log VALUES (3);"}, lock_wait_seconds=30)
    results = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        results.append(bed.run("migrate up"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.outcome.value for r in results) == ["done", "no_change"]
    assert bed.query("SELECT n FROM log ORDER BY n") == [(2,), (3,)]
    assert bed.state() == (3, False)


def test_a_deploy_scripts_lock_directory_is_honoured_both_ways(make_bed, tmp_path):
    from bot.cli.shell import result_text
    from commands.executor import Actor
    lock_dir = tmp_path / "togather-migration-test.lock"
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;"},
                   lock_dirs=[str(lock_dir)])

    lock_dir.mkdir()  # deploy.sh: mkdir "$LOCK_DIR" while it runs migrate up
    refused = bed.run("migrate up")
    assert refused.reason is Reason.LOCK_HELD and refused.lock_dir.path == str(lock_dir)
    assert f"a deploy script holds its lock directory\n`{lock_dir}` exists" in result_text(refused, command="migrate up")
    assert bed.state() is None
    lock_dir.rmdir()

    seen = []  # while dbops migrates, deploy.sh's mkdir would fail: the directory is dbops'
    bed.executor.run(grammar.parse("migrate up"), Actor(user="alice"),
                     progress=lambda p: seen.append(lock_dir.is_dir()) if p.step == "apply" else None)
    assert seen == [True] and bed.state() == (1, False)
    assert not lock_dir.exists()  # given back afterwards
