"""The dirty-state watcher with an injected clock, on real PostgreSQL: one alert, one
reminder per interval, one resolved message, whichever replica ticks."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from commands import grammar
from commands.executor import Actor, Executor
from commands.pg.alerts import PgAlerts
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.results import Outcome
from commands.watch.watch import DirtyWatcher

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    # golang-migrate's dirty protocol: a file that cannot run in a transaction fails half-way
    "2_email_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (no_such_column);",
    "2_email_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_email;",
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def watched(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, dirty_reminder_minutes=30)
    migrate_control_database(control_url)
    clock = Clock()
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), clock=clock)
    bed.clock = clock
    bed.watcher = DirtyWatcher(PgDatabases(application_name="dbops-watch"), PgAlerts(control_url),
                               audit=PgAuditLog(control_url), clock=clock)
    bed.env = bed.settings.environment("test")
    bed.run("migrate up 1")
    assert bed.run("migrate up").outcome is Outcome.FAILED and bed.state() == (2, True)
    return bed


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_one_alert_one_reminder_per_interval_and_one_resolved_message(watched):
    opened = watched.watcher.tick(watched.env)
    assert kinds(opened) == ["opened"]
    alert = opened[0].alert
    assert (alert.subject, alert.version, alert.failed_file) == ("dirty", 2, "2_email_index.up.sql")
    assert alert.snapshot is not None and alert.snapshot.version == 1  # the pre-migration snapshot

    assert watched.watcher.tick(watched.env) == []
    watched.clock.now += timedelta(minutes=29)
    assert watched.watcher.tick(watched.env) == []
    watched.clock.now += timedelta(minutes=1)
    assert kinds(watched.watcher.tick(watched.env)) == ["reminder"]
    assert watched.watcher.tick(watched.env) == []

    watched.executor.run(grammar.parse("migrate force 1"), Actor(user="U0ALICE", channel=None, surface="slack"))
    resolved = watched.watcher.tick(watched.env)
    assert kinds(resolved) == ["resolved"]
    assert (resolved[0].alert.resolved_by, resolved[0].alert.resolved_with) == ("U0ALICE", "migrate force")
    assert watched.watcher.tick(watched.env) == []


def test_fixed_outside_dbops_is_resolved_without_a_name(watched):
    watched.watcher.tick(watched.env)
    watched.execute("UPDATE schema_migrations SET version = 1, dirty = false")  # the migrate CLI's force 1

    resolved = watched.watcher.tick(watched.env)

    assert kinds(resolved) == ["resolved"] and resolved[0].alert.resolved_by is None


def test_a_database_ahead_of_its_files_alerts_the_same_way(watched):
    watched.execute("UPDATE schema_migrations SET version = 7, dirty = false")

    events = watched.watcher.tick(watched.env)

    assert [(e.kind, e.alert.subject, e.alert.version) for e in events] == [("opened", "mismatch", 7)]


def test_replicas_ticking_at_once_raise_one_alert(watched, control_url):
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(4)
    watchers = [DirtyWatcher(PgDatabases(application_name="dbops-watch"), PgAlerts(control_url), audit=None,
                             clock=watched.clock) for _ in range(4)]

    def tick(watcher):
        barrier.wait()
        events = watcher.tick(watched.env)
        with lock:
            results.extend(events)

    threads = [threading.Thread(target=tick, args=(w,)) for w in watchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert kinds(results) == ["opened"]
