"""The control database and the audit log: every command recorded, never in a managed database."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from structlog.testing import capture_logs

from commands import grammar
from commands.errors import UsageError
from commands.executor import Actor, Executor
from commands.pg.control import CONTROL_MIGRATIONS, CONTROL_TABLE, PgAuditLog, migrate_control_database
from commands.pg.lock import golang_migrate_lock_key
from commands.source import load_source
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import HistoryResult, Outcome, Reason
from tests.conftest import wait_for

FILES = {"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;",
         "2_more.up.sql": "CREATE TABLE more ();", "2_more.down.sql": "DROP TABLE more;"}


@pytest.fixture
def audited(make_bed, control_url):
    bed = make_bed(FILES, channels=["C0INCIDENT"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url))
    return bed, control_url


def run(bed, text, user="alice", channel="C0INCIDENT"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel=channel, surface="slack"))


def test_the_control_schema_is_applied_by_dbops_own_engine_once(control_url):
    threads = [threading.Thread(target=migrate_control_database, args=(control_url,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    latest = load_source(CONTROL_MIGRATIONS).last_version
    assert migrate_control_database(control_url) == latest
    with psycopg.connect(control_url) as conn:
        assert conn.execute("SELECT version, dirty FROM dbops_schema_migrations").fetchall() == [(latest, False)]
        assert conn.execute("SELECT count(*) FROM dbops_audit_log").fetchone() == (0,)


def test_an_up_to_date_control_schema_is_checked_without_waiting_for_its_lock(control_url):
    """Every command line passes here: an up-to-date schema must not queue behind whoever
    holds the control schema's lock (another replica starting, a long migration of it)."""
    latest = migrate_control_database(control_url)
    key = golang_migrate_lock_key(schema="public", table=CONTROL_TABLE, database_url=control_url)
    with psycopg.connect(control_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        assert migrate_control_database(control_url) == latest


def test_every_command_is_recorded_with_actor_channel_outcome_and_duration(audited):
    bed, _ = audited
    run(bed, "migrate up 1")
    run(bed, "migrate status", user="bob")
    with pytest.raises(UsageError):
        run(bed, "migrate goto 7")
    history = run(bed, "dbops history test")
    assert isinstance(history, HistoryResult)
    got = [(e.actor, e.channel, e.surface, e.environment, e.command, e.outcome) for e in history.entries]
    assert got == [
        ("alice", "C0INCIDENT", "slack", "test", "migrate goto", "error"),
        ("bob", "C0INCIDENT", "slack", "test", "migrate status", "done"),
        ("alice", "C0INCIDENT", "slack", "test", "migrate up", "done"),
    ]
    newest = history.entries[0]
    assert newest.arguments == {"version": 7} and "No migration file has version 7" in newest.detail
    assert history.entries[2].arguments == {"steps": 1} and history.entries[2].duration_ms > 0


def test_the_audit_log_survives_restoring_the_managed_database(audited):
    bed, control_url = audited
    name = run(bed, "snapshot create").snapshot.name
    run(bed, "migrate up")
    run(bed, f"snapshot restore {name}")
    commands = [e.command for e in run(bed, "dbops history").entries]
    assert commands[:3] == ["snapshot restore", "migrate up", "snapshot create"]
    assert bed.query("SELECT to_regclass('dbops_audit_log')") == [(None,)]  # never in the managed database


def test_a_control_database_lost_during_an_operation_does_not_lose_its_result(audited, server_url):
    bed, control_url = audited
    bed.write({"1_users.up.sql": "CREATE TABLE users (id int);\nSELECT pg_sleep(30);"})
    running = []
    thread = threading.Thread(target=lambda: running.append(run(bed, "migrate up 1")))
    with capture_logs() as logs:
        thread.start()
        with psycopg.connect(server_url, autocommit=True) as admin:
            # The control database goes away while the migration runs; then the migration ends.
            wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                           "'%pg_sleep(30)%' AND pid <> pg_backend_pid()").fetchone()[0],
                     what="the migration to run")
            name = conninfo_to_dict(control_url)["dbname"]
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
                          "AND pid <> pg_backend_pid()")
        thread.join(timeout=60)
    [result] = running
    assert result.outcome is Outcome.FAILED and bed.state() is None  # the migration's own outcome, as it was
    assert result.audit_unwritten == "control database unreachable"
    assert any(e["event"] == "audit.write_failed" and e["log_level"] == "error" for e in logs)

    refused = run(bed, "migrate up 1")  # and what would change state now is refused, naming it
    assert refused.reason is Reason.CONTROL_UNREACHABLE and refused.detail.startswith("control database: ")
    assert run(bed, "migrate status").audit_unwritten == "control database unreachable"


def test_a_channel_mapped_to_one_environment_names_it(make_bed, database_url, tmp_path):
    from commands.config import parse_settings

    settings = parse_settings({"environments": {
        name: {"database_url": database_url, "migrations_dir": str(tmp_path), "snapshot_dir": str(tmp_path / name),
               "channels": [channel], "require_approval": []}
        for name, channel in (("staging", "C0STAGING"), ("production", "C0INCIDENT"))}},
        source="test", base_dir=tmp_path, environ={})
    executor = Executor(settings, PgDatabases(), PgDumpSnapshotter())
    assert executor.resolve_environment(None, Actor(user="u", channel="C0INCIDENT")).name == "production"
    with pytest.raises(UsageError, match="Which environment\\? Name one of: production, staging"):
        executor.resolve_environment(None, Actor(user="u", channel="C0RANDOM"))
