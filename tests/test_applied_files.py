"""The integrity of applied files, on real PostgreSQL: every file dbops applies or reverts is
recorded (sha256, who, when, how long) in the control database; status and plan flag an applied
file edited since, an applied file gone, and a new file below the current version; up refuses
on an edited applied file unless the environment allows it."""

from __future__ import annotations

import hashlib
import json

import psycopg

from bot.cli.outcome import result_json
from bot.cli.shell import result_text
from commands import grammar
from commands.executor import Actor, Executor
from commands.migrate.applied import NO_CONTROL
from commands.migrate.results import MigrateResult, StatusResult
from commands.lint.results import PlanResult
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import HistoryResult, Outcome, Reason, Refusal

FILES = {"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;",
         "3_events.up.sql": "CREATE TABLE events (id int);", "3_events.down.sql": "DROP TABLE events;"}
USERS_EDITED = "CREATE TABLE users (id int, email text);"


def audited(bed, control_url):
    """``bed`` with the control database: its files recorded, its history kept."""
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url))
    return bed


def run(bed, text, user="alice"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel=None, surface="cli"))


def sha256(bed, filename):
    return hashlib.sha256((bed.migrations / filename).read_bytes()).hexdigest()


def flags(result):
    check = result.files if isinstance(result, StatusResult) else result.files_check
    return [(f.problem, f.filename) for f in check.flags]


def test_an_applied_file_edited_afterwards_is_flagged_by_status_and_plan(make_bed, control_url):
    bed = audited(make_bed(FILES), control_url)
    assert run(bed, "migrate up").outcome is Outcome.DONE
    applied_sha = sha256(bed, "1_users.up.sql")
    bed.write({"1_users.up.sql": USERS_EDITED, "4_more.up.sql": "CREATE TABLE more ();"})

    status = run(bed, "migrate status test", user="bob")
    assert flags(status) == [("edited", "1_users.up.sql")]
    edited = status.files.flags[0]
    assert (edited.recorded.sha256, edited.sha256) == (applied_sha, sha256(bed, "1_users.up.sql"))
    assert edited.recorded.actor == "alice"
    text = result_text(status, command="migrate status test")
    assert "edited after it was applied: `1_users.up.sql`" in text
    assert f"checksum `{sha256(bed, '1_users.up.sql')[:12]}` now, `{applied_sha[:12]}` when applied by alice" in text

    flagged = json.loads(result_json(status, 0))["files"]["flags"][0]
    assert (flagged["kind"], flagged["problem"], flagged["recorded"]["sha256"]) == ("FileFlag", "edited", applied_sha)

    plan = run(bed, "migrate plan test")
    assert isinstance(plan, PlanResult) and flags(plan) == [("edited", "1_users.up.sql")]
    assert "edited after it was applied: `1_users.up.sql`" in result_text(plan, command="migrate plan test")


def test_up_refuses_on_an_edited_applied_file_and_changes_nothing(make_bed, control_url):
    bed = audited(make_bed(FILES), control_url)
    run(bed, "migrate up")
    bed.write({"1_users.up.sql": USERS_EDITED, "4_more.up.sql": "CREATE TABLE more ();"})
    refused = run(bed, "migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.EDITED_APPLIED_FILE
    assert [(f.filename, f.recorded.actor) for f in refused.files] == [("1_users.up.sql", "alice")]
    assert bed.state() == (3, False) and "more" not in bed.tables()
    assert not list((bed.migrations.parent / "snapshots").glob("*_v3_*"))  # refused before the safety snapshot
    text = result_text(refused, command="migrate up test")
    assert "refused: an applied migration file was edited after it ran" in text
    assert "allow_edited_applied_files = true" in text


def test_an_environment_that_allows_edited_applied_files_runs_up_on_top_of_one(make_bed, control_url):
    bed = audited(make_bed(FILES, allow_edited_applied_files=True), control_url)
    run(bed, "migrate up")
    bed.write({"1_users.up.sql": USERS_EDITED, "4_more.up.sql": "CREATE TABLE more ();"})
    assert run(bed, "migrate up").outcome is Outcome.DONE
    assert bed.state() == (4, False) and "more" in bed.tables()
    assert flags(run(bed, "migrate status test")) == [("edited", "1_users.up.sql")]  # still said


def test_a_new_file_below_the_current_version_is_flagged_out_of_order(make_bed, control_url):
    bed = audited(make_bed(FILES), control_url)
    run(bed, "migrate up")
    bed.write({"2_late.up.sql": "CREATE TABLE late ();", "2_late.down.sql": "DROP TABLE late;"})

    status = run(bed, "migrate status test")
    assert flags(status) == [("out_of_order", "2_late.up.sql")]
    text = result_text(status, command="migrate status test")
    assert ("golang-migrate's `up` never applies a file whose version (2) is below the database's (3)" in text
            and "Renumber it above 3" in text)
    plan = run(bed, "migrate plan test")
    assert plan.outcome is Outcome.NO_CHANGE and flags(plan) == [("out_of_order", "2_late.up.sql")]
    assert "Renumber it above 3" in result_text(plan, command="migrate plan test")
    # As golang-migrate: up never runs it.
    assert run(bed, "migrate up").outcome is Outcome.NO_CHANGE and "late" not in bed.tables()


def test_an_applied_version_whose_file_has_gone_is_flagged(make_bed, control_url):
    bed = audited(make_bed({**FILES, "4_more.up.sql": "CREATE TABLE more ();"}), control_url)
    run(bed, "migrate up")
    (bed.migrations / "3_events.up.sql").unlink()
    status = run(bed, "migrate status test")
    assert flags(status) == [("gone", "3_events.up.sql")]
    assert "applied, and its file has gone: `3_events.up.sql` (applied by alice" in \
        result_text(status, command="migrate status test")


def test_files_applied_before_dbops_recorded_them_are_not_recorded_rather_than_edited(make_bed, control_url):
    bed = make_bed(FILES)
    run(bed, "migrate up")  # no control database: nothing recorded
    bed = audited(bed, control_url)
    bed.write({"1_users.up.sql": USERS_EDITED})
    status = run(bed, "migrate status test")
    assert flags(status) == [] and status.files.unchecked == 2 and status.files.unrecorded is None
    assert "2 applied files not recorded (applied before dbops recorded files, or by the migrate CLI)" in \
        result_text(status, command="migrate status test")
    assert run(bed, "migrate up").outcome is Outcome.NO_CHANGE  # not refused: nothing says it was edited


def test_files_the_migrate_cli_applied_after_dbops_are_not_recorded_rather_than_out_of_order(make_bed, control_url):
    bed = audited(make_bed({**FILES, "4_more.up.sql": "CREATE TABLE more ();"}), control_url)
    run(bed, "migrate up 1")
    bed.execute("CREATE TABLE events (id int); UPDATE schema_migrations SET version = 3")  # as `migrate up 1` does
    status = run(bed, "migrate status test")
    assert flags(status) == [] and status.files.unchecked == 1
    run(bed, "migrate up")
    bed.write({"1_users.up.sql": USERS_EDITED})
    assert flags(run(bed, "migrate status test")) == [("edited", "1_users.up.sql")]


def test_without_a_control_database_status_says_once_that_no_file_is_recorded(make_bed):
    bed = make_bed(FILES)
    run(bed, "migrate up")
    bed.write({"1_users.up.sql": USERS_EDITED})
    status = run(bed, "migrate status test")
    assert status.outcome is Outcome.DONE and flags(status) == [] and status.files.unrecorded == NO_CONTROL
    text = result_text(status, command="migrate status test")
    assert text.count("no file is recorded") == 1 and "error" not in text.lower()


def test_history_shows_each_file_applied_and_reverted_with_its_checksum_who_and_how_long(make_bed, control_url):
    bed = audited(make_bed(FILES), control_url)
    run(bed, "migrate up")
    run(bed, "migrate down 1", user="bob")
    history = run(bed, "dbops history test")
    assert isinstance(history, HistoryResult)
    got = [(f.filename, f.direction, f.actor, f.operation, f.sha256) for f in history.files]
    assert got == [("3_events.down.sql", "down", "bob", "down", sha256(bed, "3_events.down.sql")),
                   ("3_events.up.sql", "up", "alice", "up", sha256(bed, "3_events.up.sql")),
                   ("1_users.up.sql", "up", "alice", "up", sha256(bed, "1_users.up.sql"))]
    assert all(f.duration_ms > 0 and f.environment == "test" for f in history.files)
    text = result_text(history, command="dbops history test")
    assert f"bob · reverted `3_events.down.sql` (down) · sha256 `{sha256(bed, '3_events.down.sql')[:12]}`" in text


def test_a_file_whose_record_cannot_be_written_stops_the_run_after_it(make_bed, control_url):
    """Nothing changes the database without its record: the file that ran stays (it committed),
    the files after it wait, and the result says why."""
    bed = audited(make_bed({**FILES, "4_more.up.sql": "CREATE TABLE more ();"}), control_url)
    with psycopg.connect(control_url, autocommit=True) as conn:
        conn.execute("""CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$;
                        CREATE TRIGGER refuse_3 BEFORE INSERT ON dbops_applied_files
                        FOR EACH ROW WHEN (NEW.version = 3) EXECUTE FUNCTION refuse_record();""")
    result = run(bed, "migrate up")
    assert isinstance(result, MigrateResult) and result.outcome is Outcome.FAILED
    assert [s.version for s in result.steps] == [1, 3] and bed.state() == (3, False) and "more" not in bed.tables()
    assert "3_events.up.sql ran, but" in result.audit_unwritten and "no space left on device" in result.audit_unwritten
    text = result_text(result, command="migrate up test")
    assert "migrated up from no version to 3, then stopped: the record of the last file could not be written" in text
    assert "the files after it were not run" in text


def test_a_least_privilege_role_has_its_files_recorded_and_an_edit_refused(make_bed, control_url, app_role):
    bed = audited(make_bed(FILES, url=app_role.url), control_url)
    assert run(bed, "migrate up").outcome is Outcome.DONE
    bed.write({"3_events.up.sql": "CREATE TABLE events (id bigint);", "4_more.up.sql": "CREATE TABLE more ();"})
    assert flags(run(bed, "migrate status test")) == [("edited", "3_events.up.sql")]
    refused = run(bed, "migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.EDITED_APPLIED_FILE
    assert bed.state() == (3, False)
