"""/rollback on real PostgreSQL: the plan for each state the guide describes, and the
rollback itself with its safety snapshot, read-back, integrity checks and record."""

from __future__ import annotations

import json

import psycopg
import pytest

from commands import grammar
from commands.errors import UsageError
from commands.executor import Actor, Executor
from commands.pg.control import PgAuditLog, PgRollbackLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import Outcome
from commands.rollback.results import RollbackPlan, RollbackResult

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);",
    "2_orders.down.sql": "DELETE FROM orders;\nDROP TABLE orders;",
}


@pytest.fixture
def desk(make_bed, control_url, tmp_path):
    state_file = tmp_path / "deployment-state.json"
    state_file.write_text(json.dumps({"deployments": [{"version": "v1.4.2"}]}))
    bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], deployment_state_file=str(state_file))
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), rollback_log=PgRollbackLog(control_url))
    bed.control_url, bed.state_file = control_url, state_file
    return bed


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


def methods(plan: RollbackPlan) -> list[tuple[str, bool, bool]]:
    return [(o.method, o.recommended, o.available) for o in plan.options]


def test_clean_with_every_down_file_recommends_the_down_file_then_the_snapshot(desk):
    desk.run("migrate up")

    plan = ask(desk, "rollback")

    assert isinstance(plan, RollbackPlan) and plan.state.version == 2 and plan.migration.name == "orders"
    assert methods(plan) == [("down", True, True), ("restore", False, True)]
    down = plan.options[0]
    assert down.command == "/rollback --steps 1 test"
    assert [s.description for s in down.impact.data_loss] == ["deletes rows from orders (no WHERE: every row)",
                                                              "drops table orders"]
    assert any("Everything written since" in w for w in plan.options[1].warnings)


def test_a_missing_down_file_makes_the_snapshot_the_plan(desk):
    desk.write({"3_backfill.up.sql": "INSERT INTO users VALUES (1, 'a@example.com');"})
    desk.run("migrate up")

    plan = ask(desk, "rollback")

    assert methods(plan) == [("restore", True, True), ("down", False, False)]
    assert "no down file" in plan.options[1].why_not


def test_dirty_with_the_previous_schema_recommends_forcing_it_then_offers_the_guides_three_ways(desk):
    desk.run("migrate up")
    desk.write({"3_index.up.sql": "CREATE INDEX CONCURRENTLY users_missing ON users (no_such_column);",
                "3_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_missing;"})
    failed = desk.run("migrate up")
    assert failed.outcome is Outcome.FAILED and desk.state() == (3, True)

    plan = ask(desk, "rollback")

    # The index build failed before it made anything: the schema is exactly version 2.
    assert plan.state.dirty and methods(plan) == [("recover", True, True), ("restore", False, True),
                                                  ("force-previous", False, True), ("force-down", False, True)]
    assert plan.options[0].command == "/rollback --recover test" and plan.options[0].impact.drops == ()
    assert plan.options[2].command == "/migrate force 2 test"
    assert plan.options[3].command == "/rollback --steps 1 test"


def test_force_then_down_rolls_a_dirty_database_back_and_records_why(desk):
    desk.run("migrate up")
    desk.write({"3_index.up.sql": "CREATE INDEX CONCURRENTLY users_missing ON users (no_such_column);",
                "3_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_missing;"})
    desk.run("migrate up")

    result = ask(desk, 'rollback --steps 1 --reason "index migration failed in production"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE and result.method == "force-down"
    assert desk.state() == (2, False) and result.after.version == 2 and result.snapshots
    with psycopg.connect(desk.control_url) as conn:
        assert conn.execute("SELECT method, reason, version_before, dirty_before, version_after, outcome "
                            "FROM dbops_rollbacks").fetchall() == [
            ("force-down", "index migration failed in production", 3, True, 2, "done")]
    state = json.loads(desk.state_file.read_text())
    assert state["deployments"] == [{"version": "v1.4.2"}]  # the deploy script's state is kept
    assert state["last_rollback"]["migration_version"] == 3 and state["last_rollback"]["reason"].startswith("index")


def test_a_down_file_that_fails_half_way_leaves_the_version_before_the_rollback(desk):
    desk.run("migrate up")
    desk.write({"2_orders.down.sql": "DROP TABLE orders;\nSELECT no_such_function();"})

    result = ask(desk, 'rollback --steps 1 --reason "broken release"')

    assert result.outcome is Outcome.FAILED and desk.state() == (2, False)
    assert "orders" in desk.tables()  # the first statement was rolled back with the second
    assert result.step.failure.error.line == 2


def test_orphaned_rows_left_by_a_rollback_are_reported_not_hidden(desk):
    desk.write({"3_seed.up.sql": "INSERT INTO users VALUES (101, 'seed@example.com'), (102, 'other@example.com');",
                "3_seed.down.sql": "SET session_replication_role = replica;\nDELETE FROM users WHERE id > 100;\n"
                                   "SET session_replication_role = origin;"})
    desk.run("migrate up")
    desk.execute("INSERT INTO orders VALUES (1, 101), (2, 101), (3, 102)")  # the app used the seeded users

    result = ask(desk, 'rollback --steps 1 --reason "seed data was wrong"')

    assert result.outcome is Outcome.DONE and desk.state() == (2, False)
    assert result.foreign_keys_checked == 1
    assert [(o.table, o.columns, o.references, o.rows) for o in result.orphans] == [
        ("orders", ("user_id",), "users", 3)]


def test_a_rollback_needs_a_reason_and_only_goes_down(desk):
    desk.run("migrate up")
    with pytest.raises(UsageError, match="needs a reason"):
        grammar.parse("rollback --steps 1")
    with pytest.raises(UsageError, match="only goes down"):
        ask(desk, 'rollback --to 2 --reason "typo"')
    assert desk.state() == (2, False)


def test_a_foreign_key_order_failure_names_the_dependency_that_caused_it(desk):
    desk.write({"3_archive.up.sql": "CREATE TABLE archive (id bigint PRIMARY KEY);\n"
                                    "ALTER TABLE orders ADD COLUMN archive_id bigint REFERENCES archive;",
                "3_archive.down.sql": "DROP TABLE archive;\nALTER TABLE orders DROP COLUMN archive_id;"})
    desk.run("migrate up")

    result = ask(desk, 'rollback --steps 1 --reason "archive feature pulled"')

    assert result.outcome is Outcome.FAILED and desk.state() == (3, False)
    error = result.step.failure.error
    assert error.sqlstate == "2BP01" and error.line == 1
    assert error.dependency.startswith("orders.archive_id references archive.id")
