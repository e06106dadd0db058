"""Recovery that keeps good work, on real PostgreSQL: a dirty database whose schema is the
previous version plus leftovers of the failed file that hold no data is brought back by
dropping them and forcing the previous version: no snapshot restored, every write kept."""

from __future__ import annotations

import pytest

from bot.cli.shell import result_text
from commands import grammar
from commands.approval.results import ApprovalNeeded
from commands.errors import UsageError
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, PgRollbackLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import Outcome
from commands.migrate.results import MigrateResult
from commands.rollback.results import RollbackPlan, RollbackResult
from tests.schema_history import TWO_TABLES, UNIQUE_EMAIL

# Its own transaction commits the table, then the file fails: dirty, with the table left behind.
WIDGETS = {"3_widgets.up.sql": "BEGIN;\nCREATE TABLE widgets (id int);\nCOMMIT;\nSELECT 1 / 0;",
           "3_widgets.down.sql": "DROP TABLE widgets;"}
ROWS = [(1, "a@example.com"), (2, "a@example.com"), (3, "c@example.com")]


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


@pytest.fixture
def failed_index(make_bed, control_url):
    """Dirty at 3: a unique index built CONCURRENTLY over duplicate emails, left INVALID."""
    bed = make_bed(TWO_TABLES, control=control_url, channels=["C0INCIDENT"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), rollback_log=PgRollbackLog(control_url))
    bed.run("migrate up test")
    bed.execute("INSERT INTO users VALUES " + ", ".join(f"({i}, '{e}')" for i, e in ROWS))
    bed.write(UNIQUE_EMAIL)
    assert bed.run("migrate up test").outcome is Outcome.FAILED and bed.state() == (3, True)
    return bed


def indexes(bed) -> list[str]:
    return [r[0] for r in bed.query("SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1")]


def test_the_plan_for_an_invalid_index_is_to_drop_it_and_force_the_previous_version(failed_index):
    plan = ask(failed_index, "rollback")

    assert isinstance(plan, RollbackPlan)
    assert [(o.method, o.recommended) for o in plan.options][:2] == [("recover", True), ("restore", False)]
    recover = plan.options[0]
    assert recover.command == "/rollback --recover test" and recover.impact.target == 2
    assert recover.impact.drops == ('DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_unique";',)
    assert any(w.startswith("Loses nothing") for w in recover.warnings)
    assert any("Everything written since" in w for w in plan.options[1].warnings)
    text = result_text(plan, command="rollback test")
    assert "Remove what 3 left behind and force 2" in text
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_unique";' in text


def test_recovering_an_invalid_index_leaves_the_database_clean_at_the_previous_version_without_a_restore(failed_index):
    result = ask(failed_index, 'rollback --recover --reason "unique email index failed on duplicates"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE and result.method == "recover"
    assert isinstance(result.step, MigrateResult) and result.step.operation == "recover"  # not a restore
    assert failed_index.state() == (2, False)
    assert indexes(failed_index) == ["users_pkey"]
    assert failed_index.query("SELECT id, email FROM users ORDER BY id") == ROWS  # the data untouched
    assert result.snapshots and result.dropped == (
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_unique";',)
    text = result_text(result, command="rollback --recover test")
    assert "rolled back from 3 to 2 by removing the failed migration's leftovers, then force" in text
    assert "recovered from version 3 (dirty) to version 2 (clean)" in text
    failed_index.execute("DELETE FROM users WHERE id = 2")
    assert failed_index.run("migrate up test").outcome is Outcome.DONE  # the fixed data lets 3 apply


def test_an_empty_table_the_failed_file_created_is_dropped_by_the_recovery(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.write(WIDGETS)
    assert bed.run("migrate up test").outcome is Outcome.FAILED and bed.state() == (3, True)

    plan = bed.run("rollback test")
    assert plan.options[0].method == "recover"
    assert plan.options[0].impact.drops == ('DROP TABLE "public"."widgets";',)
    result = bed.run('rollback --recover test --reason "widgets failed"')

    assert result.outcome is Outcome.DONE and bed.state() == (2, False) and "widgets" not in bed.tables()


def test_a_leftover_table_with_rows_is_not_dropped_and_the_snapshot_is_recommended(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.write(WIDGETS)
    bed.run("migrate up test")
    bed.execute("INSERT INTO widgets VALUES (1)")  # the application already wrote to it

    plan = bed.run("rollback test")
    assert "recover" not in [o.method for o in plan.options]
    assert not plan.options[0].available or plan.options[0].method == "restore"
    assert plan.schema_version.leftovers[0].why_not == "it holds rows (or they could not be counted)"
    with pytest.raises(UsageError, match="cannot be removed without data loss: table widgets"):
        bed.run('rollback --recover test --reason "widgets failed"')
    assert bed.state() == (3, True) and "widgets" in bed.tables()


def test_the_approval_card_of_a_recovery_shows_the_statements_it_runs(make_bed, control_url):
    bed = make_bed(TWO_TABLES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                   require_approval=["force"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), approvals=PgApprovals(control_url))
    bed.run("migrate up test")
    bed.execute("INSERT INTO users VALUES " + ", ".join(f"({i}, '{e}')" for i, e in ROWS))
    bed.write(UNIQUE_EMAIL)
    bed.run("migrate up test")

    asked = ask(bed, 'rollback --recover test --reason "unique email index failed"')

    assert isinstance(asked, ApprovalNeeded) and asked.request.operation == "force"
    text = result_text(asked, command="rollback --recover test")
    assert "Removes what migration 3 left behind, then sets the recorded version to 2" in text
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_unique";' in text
    done = ask(bed, f"dbops approve {asked.request.id}", user="U0BOB")
    assert done.result.outcome is Outcome.DONE and bed.state() == (2, False)
    assert indexes(bed) == ["users_pkey"]
