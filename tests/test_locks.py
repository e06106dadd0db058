"""/dbops lock status|release and the stale-lock and disk watchers, on real PostgreSQL.

A lock is released only when nothing is using it: the advisory lock's holder is ended only
while its session is idle, a lock directory is removed only when it is old and its process
is gone; the watchers alert once and resolve when the lock is released or the disk freed.
"""

from __future__ import annotations

import os
import subprocess
import threading
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from commands import grammar
from commands.config import DEFAULT_REQUIRE_APPROVAL
from commands.executor import Actor, Executor
from commands.pg.alerts import PgAlerts
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.lock import golang_migrate_lock_key
from commands.approval.results import ApprovalDecided, ApprovalNeeded, ApprovalRefused
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.results import Outcome, Reason
from commands.watch.watch_locks import DiskWatcher, StaleLockWatcher
from tests.conftest import wait_for

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


def hold_lock(bed) -> psycopg.Connection:
    """Another client (a deploy's ``migrate``) holding golang-migrate's advisory lock."""
    conn = psycopg.connect(bed.url, autocommit=True, application_name="migrate")
    key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=bed.url)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    return conn


def let_go(bed, holder: psycopg.Connection) -> None:
    """Close the holder and wait until the server has ended its session, and so freed its lock:
    close() returns before that."""
    pid = holder.info.backend_pid
    holder.close()
    wait_for(lambda: session_state(bed, pid) is None, what="the holder's session to end")


def session_state(bed, pid: int) -> str | None:
    rows = bed.query("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
    return rows[0][0] if rows else None


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def make_lock_dir(path, *, age: timedelta, pid: int | None) -> None:
    path.mkdir()
    (path / "locked_at").write_text((datetime.now(timezone.utc) - age).isoformat())
    if pid is not None:
        (path / "pid").write_text(f"{pid}\n")


@pytest.fixture
def bed(make_bed, tmp_path):
    bed = make_bed(FILES, stale_lock_minutes=0, lock_dir_timeout_minutes=30,
                   lock_dirs=[str(tmp_path / "togather-migration-test.lock")])
    bed.lock_dir = tmp_path / "togather-migration-test.lock"
    bed.run("migrate up")
    return bed


def test_status_shows_the_holder_of_the_advisory_lock(bed):
    holder = hold_lock(bed)
    try:
        status = bed.run("dbops lock status")
        assert isinstance(status, LockStatusResult)
        assert status.holder is not None and status.holder.pid == holder.info.backend_pid
        assert (status.holder.application_name, status.holder.state) == ("migrate", "idle")
        assert status.holder.since is not None and status.holder.state_since is not None
        assert [(d.path, d.exists) for d in status.lock_dirs] == [(str(bed.lock_dir), False)]
    finally:
        let_go(bed, holder)
    assert bed.run("dbops lock status").holder is None


def test_release_refuses_while_the_holder_runs_a_statement_and_ends_it_once_idle(bed):
    holder = hold_lock(bed)
    pid = holder.info.backend_pid
    cancelled = []

    def migrate():
        try:
            holder.execute("SELECT pg_sleep(60)")
        except psycopg.errors.QueryCanceled:
            cancelled.append(True)

    worker = threading.Thread(target=migrate)
    worker.start()
    try:
        wait_for(lambda: session_state(bed, pid) == "active", what="the holder to be running a statement")
        refused = bed.run("dbops lock release")
        assert isinstance(refused, LockReleaseResult) and refused.outcome is Outcome.REFUSED
        assert refused.kept == (("advisory lock", "holder_active"),) and refused.terminated is None
        assert session_state(bed, pid) == "active"  # untouched
    finally:
        bed.query("SELECT pg_cancel_backend(%s)", (pid,))
        worker.join(timeout=30)
    assert cancelled and session_state(bed, pid) == "idle"

    released = bed.run("dbops lock release")

    assert released.outcome is Outcome.DONE and released.terminated == pid
    assert session_state(bed, pid) is None and bed.run("dbops lock status").holder is None
    assert bed.run("migrate down 1").outcome is Outcome.DONE  # the lock is free for real
    holder.close()


def test_release_spares_a_holder_idle_for_less_than_the_threshold(make_bed):
    bed = make_bed(FILES, stale_lock_minutes=15)
    holder = hold_lock(bed)
    try:
        refused = bed.run("dbops lock release")
        assert refused.outcome is Outcome.REFUSED and refused.kept == (("advisory lock", "holder_idle_briefly"),)
        assert session_state(bed, holder.info.backend_pid) == "idle"
    finally:
        holder.close()


def test_release_of_nothing_held_changes_nothing(bed):
    assert bed.run("dbops lock release").outcome is Outcome.NO_CHANGE


def test_a_stale_lock_dir_whose_process_is_gone_is_removed(bed):
    make_lock_dir(bed.lock_dir, age=timedelta(hours=2), pid=dead_pid())
    status = bed.run("dbops lock status").lock_dirs[0]
    assert status.exists and status.stale and status.pid_alive is False and status.locked_at_source == "file"

    released = bed.run("dbops lock release")

    assert released.outcome is Outcome.DONE and [d.path for d in released.removed] == [str(bed.lock_dir)]
    assert not bed.lock_dir.exists() and list(bed.lock_dir.parent.glob(".*released*")) == []


@pytest.mark.parametrize("age, pid, why", [
    (timedelta(minutes=5), None, "dir_fresh"),
    (timedelta(hours=2), os.getpid(), "dir_owner_alive"),
])
def test_a_fresh_lock_dir_or_one_whose_process_lives_is_kept(bed, age, pid, why):
    make_lock_dir(bed.lock_dir, age=age, pid=pid)

    refused = bed.run("dbops lock release")

    assert refused.outcome is Outcome.REFUSED and refused.kept == ((str(bed.lock_dir), why),)
    assert (bed.lock_dir / "locked_at").exists()


# --- the two-person rule ---------------------------------------------------------------------------

@pytest.fixture
def desk(make_bed, control_url, tmp_path):
    bed = make_bed(FILES, control=control_url, approvers=["U0BOB"], stale_lock_minutes=0,
                   require_approval=list(DEFAULT_REQUIRE_APPROVAL), lock_dirs=[str(tmp_path / "m.lock")])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), approvals=PgApprovals(control_url))
    return bed


def ask(bed, text: str, user: str):
    return bed.executor.run(grammar.parse(text), Actor(user=user, surface="slack"))


def test_lock_release_needs_approval_by_default_and_then_ends_the_idle_holder(desk):
    holder = hold_lock(desk)
    needed = ask(desk, "dbops lock release", "U0ALICE")
    assert isinstance(needed, ApprovalNeeded) and needed.request.operation == "lock-release"
    assert session_state(desk, holder.info.backend_pid) == "idle"  # nothing happened yet

    decided = ask(desk, f"dbops approve {needed.request.id}", "U0BOB")

    assert isinstance(decided, ApprovalDecided) and isinstance(decided.result, LockReleaseResult)
    assert decided.result.terminated == holder.info.backend_pid
    assert session_state(desk, holder.info.backend_pid) is None
    holder.close()


def test_an_approval_is_void_when_another_session_holds_the_lock_by_then(desk):
    first = hold_lock(desk)
    needed = ask(desk, "dbops lock release", "U0ALICE")
    first.close()
    second = hold_lock(desk)
    try:
        refused = ask(desk, f"dbops approve {needed.request.id}", "U0BOB")
        assert isinstance(refused, ApprovalRefused) and refused.reason is Reason.STATE_CHANGED
        assert session_state(desk, second.info.backend_pid) == "idle"
    finally:
        second.close()


# --- the watchers --------------------------------------------------------------------------------------

class Clock:
    """The real time moved forward by ``ahead``: the lock's holder started at the real time."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.ahead


def test_a_lock_held_too_long_alerts_once_and_resolves_when_released(make_bed, control_url, tmp_path):
    bed = make_bed(FILES, control=control_url, stale_lock_minutes=15, lock_dir_timeout_minutes=30,
                   lock_dirs=[str(tmp_path / "m.lock")])
    migrate_control_database(control_url)
    clock = Clock()
    watcher = StaleLockWatcher(PgDatabases(application_name="dbops-watch"), PgAlerts(control_url), audit=None,
                               clock=clock)
    env = bed.settings.environment("test")
    holder = hold_lock(bed)
    assert watcher.tick(env) == []  # held, not for long
    clock.ahead = timedelta(minutes=16)

    opened = watcher.tick(env)
    assert [(e.kind, e.alert.subject, e.alert.version) for e in opened] == \
        [("opened", "stale_lock", holder.info.backend_pid)]
    assert opened[0].alert.holder.application_name == "migrate"
    assert watcher.tick(env) == []
    let_go(bed, holder)
    assert [(e.kind, e.alert.subject) for e in watcher.tick(env)] == [("resolved", "stale_lock")]
    assert watcher.tick(env) == []

    make_lock_dir(tmp_path / "m.lock", age=timedelta(minutes=31), pid=dead_pid())
    opened = watcher.tick(env)
    assert [(e.kind, e.alert.subject) for e in opened] == [("opened", "stale_lock_dir")]
    assert opened[0].alert.lock_dir.path == str(tmp_path / "m.lock") and opened[0].alert.lock_dir.pid_alive is False
    assert watcher.tick(env) == []
    assert bed.run("dbops lock release").outcome is Outcome.DONE
    assert [(e.kind, e.alert.subject) for e in watcher.tick(env)] == [("resolved", "stale_lock_dir")]


def test_a_full_snapshot_disk_alerts_once_with_the_biggest_and_oldest_snapshots(make_bed, control_url,
                                                                                  small_filesystem):
    bed = make_bed(FILES, control=control_url, snapshot_dir=str(small_filesystem), disk_alert_percent=50)
    migrate_control_database(control_url)
    watcher = DiskWatcher(PgAlerts(control_url), settings=bed.settings, clock=lambda: datetime.now(timezone.utc))
    env = bed.settings.environment("test")
    sizes = {"togather_test_20260101_030000.sql.gz": 24, "togather_test_20260301_030000.sql.gz": 100,
             "togather_test_20260501_030000.sql.gz": 16}
    for name, kib in sizes.items():
        (small_filesystem / name).write_bytes(os.urandom(kib * 1024))

    opened = watcher.tick(env)

    assert [(e.kind, e.alert.subject) for e in opened] == [("opened", "disk")]
    disk = opened[0].alert.disk
    assert disk.percent >= 50 and disk.threshold == 50
    assert [s.name for s in disk.biggest] == ["togather_test_20260301_030000", "togather_test_20260101_030000",
                                              "togather_test_20260501_030000"]
    assert disk.oldest[0].name == "togather_test_20260101_030000"
    assert watcher.tick(env) == []
    (small_filesystem / "togather_test_20260301_030000.sql.gz").unlink()
    assert [(e.kind, e.alert.subject) for e in watcher.tick(env)] == [("resolved", "disk")]
    assert watcher.tick(env) == []
