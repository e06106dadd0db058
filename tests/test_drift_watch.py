"""The drift watcher on real PostgreSQL and the Slack fake: one alert per new set of
differences, reminders like the dirty alert, one resolved message in the alert's thread, and
each scheduled check done once whichever replica ticks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from commands.executor import Executor
from commands.pg.alerts import PgAlerts
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.job_runs import PgJobRuns
from commands.results import Outcome
from commands.watch.watch_drift import DriftJob
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_email_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (no_such_column);",
    "2_email_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_email;",
}
START = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def watched(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, dirty_reminder_minutes=30)
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url))
    bed.job = DriftJob(bed.executor, PgJobRuns(control_url), PgAlerts(control_url), owner="replica-a")
    bed.env = bed.settings.environment("test")
    assert bed.run("migrate up 1").outcome is Outcome.DONE
    return bed


def check(bed, minutes: int, job: DriftJob | None = None) -> list[tuple[str, int | None]]:
    """The check of the occurrence ``minutes`` after START, at that time: (kind, differences) of each event."""
    at = START + timedelta(minutes=minutes)
    events = (job or bed.job).tick(bed.env, occurrence=at, now=at)
    return [(e.kind, e.alert.drift.total if e.alert.drift else None) for e in events]


def test_the_drift_watcher_alerts_once_reminds_and_resolves_once(watched):
    assert check(watched, 0) == []  # no drift: nothing to say
    watched.execute("ALTER TABLE users ADD COLUMN nickname text")

    assert check(watched, 10) == [("opened", 1)]
    opened = watched.job.alerts.open_alert("test", "drift")
    assert [(d.change.value, d.kind, d.name) for d in opened.drift.differences] == [("+", "column", "users.nickname")]
    assert check(watched, 20) == []  # the same drift: no flood
    assert check(watched, 40) == [("reminder", 1)]  # 30 minutes after the alert, like the dirty alert
    assert check(watched, 50) == []

    watched.execute("ALTER TABLE users DROP COLUMN nickname")
    assert check(watched, 60) == [("resolved", 1)]
    assert check(watched, 70) == []


def test_a_different_set_of_differences_is_a_new_alert(watched):
    watched.execute("ALTER TABLE users ADD COLUMN nickname text")
    assert check(watched, 0) == [("opened", 1)]

    watched.execute("CREATE INDEX users_nickname ON users (nickname)")

    assert check(watched, 10) == [("resolved", 1), ("opened", 2)]
    assert check(watched, 20) == []


def test_each_occurrence_is_checked_by_one_replica(watched, control_url):
    watched.execute("ALTER TABLE users ADD COLUMN nickname text")
    other = DriftJob(watched.executor, PgJobRuns(control_url), PgAlerts(control_url), owner="replica-b")

    assert check(watched, 0) == [("opened", 1)]
    assert check(watched, 0, job=other) == []  # this occurrence was claimed: not checked twice


def test_a_dirty_database_is_left_to_the_dirty_watcher(watched):
    watched.execute("ALTER TABLE users ADD COLUMN nickname text")
    assert check(watched, 0) == [("opened", 1)]
    assert watched.run("migrate up").outcome is Outcome.FAILED and watched.state() == (2, True)

    assert check(watched, 10) == []  # neither a new alert nor a resolved one
    assert watched.job.alerts.open_alert("test", "drift") is not None


def test_a_drift_alert_is_posted_with_its_differences_and_resolved_in_its_thread(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], drift_check_schedule="*/15 * * * *")
        with serving(bed, fake, control_url) as desk:
            assert bed.run("migrate up 1").outcome is Outcome.DONE
            bed.execute("ALTER TABLE users ADD COLUMN nickname text")
            env = bed.settings.environment("test")
            drift = desk.bot.watchers.drift

            assert [e.kind for e in drift.tick(env)] == ["opened"]
            alert = fake.wait_for_message("C0INCIDENT", lambda m: "drifted from version 1" in text_of(m))
            assert "+ column users.nickname text" in text_of(alert)
            assert drift.tick(env) == []  # the same occurrence: checked once

            bed.execute("ALTER TABLE users DROP COLUMN nickname")
            later = drift.now() + timedelta(minutes=15)
            drift.now = lambda: later
            assert [e.kind for e in drift.tick(env)] == ["resolved"]
            resolved = fake.wait_for_message("C0INCIDENT", lambda m: m.thread_ts == alert.ts and
                                             "Resolved" in text_of(m))
            assert "no drift: the schema is exactly version 1 again" in text_of(resolved)
