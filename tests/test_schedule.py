"""The scheduled snapshot cleanup with an injected clock, on real PostgreSQL: a notice an hour
before listing what the run then deletes, the report's figures, once per occurrence however
many replicas tick, a missed occurrence caught up once (and saying so), a failure alerted."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from bot.jobs.schedules import crontab_trigger, occurrences
from commands.executor import Executor
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.job_runs import PgJobRuns
from commands.watch.schedule import CleanupJob
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

OCCURRENCE = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # "0 3 * * *" in UTC


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_snapshot(directory: Path, created: datetime, size: int = 1000, reason: str = "manual") -> str:
    """A snapshot as dbops names it, dated ``created`` (listing reads the date from the name)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"test_{created:%Y%m%d_%H%M%S}_vnone_{reason}"
    (directory / f"{name}.dump.zst").write_bytes(b"x" * size)
    (directory / f"{name}.manifest.json").write_text(json.dumps({"name": name, "environment": "test"}))
    return name


class Scheduled:
    def __init__(self, bed, control_url: str, clock: Clock) -> None:
        self.bed, self.clock, self.control_url = bed, clock, control_url
        self.env = bed.settings.environment("test")
        self.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                                 audit=PgAuditLog(control_url), clock=clock)
        self.job = self.replica("replica-1")

    def replica(self, owner: str) -> CleanupJob:
        return CleanupJob(self.executor, PgJobRuns(self.control_url), owner=owner)

    def tick(self, job: CleanupJob | None = None) -> list:
        """What the bot's minute job does: the occurrences around now, each to the job."""
        now = self.clock.now
        trigger = crontab_trigger(self.env.cleanup_schedule, self.bed.settings.schedule_timezone)
        events = []
        for occurrence in occurrences(trigger, now):
            if occurrence is not None:
                events += (job or self.job).tick(self.env, occurrence=occurrence, now=now)
        return events

    def at(self, when: datetime) -> list:
        self.clock.now = when
        return self.tick()

    def runs(self) -> list[tuple]:
        with psycopg.connect(self.control_url, autocommit=True) as conn:
            return conn.execute("SELECT occurrence, phase, outcome, caught_up FROM dbops_job_runs "
                                "ORDER BY occurrence, phase").fetchall()


@pytest.fixture
def scheduled(make_bed, control_url):
    bed = make_bed({"1_a.up.sql": "CREATE TABLE a ();"}, control=control_url, retention_days=7, keep_last=1,
                   cleanup_schedule="0 3 * * *", cleanup_notice_minutes=60)
    migrate_control_database(control_url)
    return Scheduled(bed, control_url, Clock(OCCURRENCE - timedelta(hours=2)))


def old_snapshots(directory: Path) -> dict[str, str]:
    return {
        "oldest": write_snapshot(directory, OCCURRENCE - timedelta(days=15), size=4000),
        "old": write_snapshot(directory, OCCURRENCE - timedelta(days=11), size=3000),
        # younger than 7 days when the notice goes out, older at the occurrence: the notice lists it
        "turning": write_snapshot(directory, OCCURRENCE - timedelta(days=7, minutes=30), size=2000),
        "newest": write_snapshot(directory, OCCURRENCE - timedelta(days=1), size=1000),
    }


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_notice_an_hour_before_lists_what_the_run_deletes_and_a_pinned_one_is_kept(scheduled):
    names = old_snapshots(scheduled.env.snapshot_dir)
    assert scheduled.at(OCCURRENCE - timedelta(minutes=61)) == []

    notice = scheduled.at(OCCURRENCE - timedelta(minutes=60))
    assert kinds(notice) == ["notice"]
    assert [s.name for s in notice[0].delete] == [names["turning"], names["old"], names["oldest"]]
    assert (notice[0].occurrence, notice[0].timezone) == (OCCURRENCE, "UTC")
    assert scheduled.at(OCCURRENCE - timedelta(minutes=30)) == []  # said once

    scheduled.bed.run(f"snapshot pin {names['old']}")
    report = scheduled.at(OCCURRENCE + timedelta(seconds=40))

    assert kinds(report) == ["report"] and not report[0].caught_up
    r = report[0].result
    assert [s.name for s in r.deleted] == [names["turning"], names["oldest"]]
    assert {s.name: why for s, why in r.kept} == {names["newest"]: "one of the newest 1", names["old"]: "pinned"}
    assert r.freed_bytes == 6000
    assert (r.disk_before.snapshots_bytes, r.disk_after.snapshots_bytes) == (10000, 4000)
    assert scheduled.at(OCCURRENCE + timedelta(minutes=2)) == []
    assert scheduled.runs() == [(OCCURRENCE, "notice", "done", False), (OCCURRENCE, "run", "done", False)]
    audit = PgAuditLog(scheduled.control_url).latest("test", 1)[0]
    assert (audit.actor, audit.surface, audit.command, audit.outcome) == ("dbops", "scheduler", "snapshot cleanup",
                                                                          "done")


def test_scheduled_cleanup_needs_no_approval_even_where_cleanup_by_hand_does(make_bed, control_url):
    bed = make_bed(control=control_url, require_approval=["cleanup"], approvers=["U0BOB"], keep_last=0)
    migrate_control_database(control_url)
    s = Scheduled(bed, control_url, Clock(OCCURRENCE + timedelta(seconds=10)))
    name = write_snapshot(s.env.snapshot_dir, OCCURRENCE - timedelta(days=30))
    events = s.tick()
    assert kinds(events) == ["report"] and [x.name for x in events[0].result.deleted] == [name]


def test_two_replicas_ticking_at_once_give_one_notice_and_one_report(scheduled):
    old_snapshots(scheduled.env.snapshot_dir)
    replicas = [scheduled.replica(f"replica-{i}") for i in range(4)]

    def all_at_once(when: datetime) -> list:
        scheduled.clock.now = when
        barrier, lock, events = threading.Barrier(len(replicas)), threading.Lock(), []

        def tick(job):
            barrier.wait()
            said = scheduled.tick(job)
            with lock:
                events.extend(said)
        threads = [threading.Thread(target=tick, args=(job,)) for job in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return events

    assert kinds(all_at_once(OCCURRENCE - timedelta(minutes=59))) == ["notice"]
    assert kinds(all_at_once(OCCURRENCE + timedelta(seconds=5))) == ["report"]
    assert kinds(all_at_once(OCCURRENCE + timedelta(seconds=65))) == []
    assert [r[1] for r in scheduled.runs()] == ["notice", "run"]


def test_a_missed_occurrence_is_caught_up_once_and_says_so_and_older_ones_are_not(scheduled):
    old_snapshots(scheduled.env.snapshot_dir)
    scheduled.at(OCCURRENCE - timedelta(minutes=60))
    assert kinds(scheduled.at(OCCURRENCE + timedelta(seconds=30))) == ["report"]
    # every replica is down for two days and a half: two occurrences are missed
    write_snapshot(scheduled.env.snapshot_dir, OCCURRENCE + timedelta(hours=1), reason="later")
    back = OCCURRENCE + timedelta(days=2, hours=9)

    caught = scheduled.at(back)

    assert kinds(caught) == ["report"] and caught[0].caught_up
    assert caught[0].occurrence == OCCURRENCE + timedelta(days=2)  # the latest missed one only
    assert scheduled.at(back + timedelta(minutes=1)) == []
    assert [(o, p, c) for o, p, _, c in scheduled.runs()] == [
        (OCCURRENCE, "notice", False), (OCCURRENCE, "run", False), (OCCURRENCE + timedelta(days=2), "run", True)]


def test_a_first_start_after_an_occurrence_does_not_run_it_late(scheduled):
    old_snapshots(scheduled.env.snapshot_dir)
    assert scheduled.at(OCCURRENCE + timedelta(hours=5)) == []
    assert scheduled.runs() == []


@pytest.fixture
def read_only_snapshots(tmp_path):
    mountpoint = tmp_path / "snapshots"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)], check=True)
    write_snapshot(mountpoint, OCCURRENCE - timedelta(days=30))
    write_snapshot(mountpoint, OCCURRENCE - timedelta(days=1))
    subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_failing_cleanup_gives_a_failed_event(scheduled, read_only_snapshots):
    failed = scheduled.at(OCCURRENCE + timedelta(seconds=20))

    assert kinds(failed) == ["failed"]
    assert "Could not delete snapshot" in failed[0].message and "Read-only file system" in failed[0].message
    assert scheduled.runs() == [(OCCURRENCE, "run", "failed", False)]
    assert scheduled.at(OCCURRENCE + timedelta(minutes=1)) == []  # not retried every minute


def test_notice_and_report_are_posted_with_the_time_zone(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(control=control_url, channels=["C0INCIDENT"], keep_last=1, retention_days=7,
                       cleanup_schedule="0 3 * * *")
        bed.settings = dataclasses.replace(bed.settings, schedule_timezone="Europe/Berlin")
        occurrence = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 03:00 in Berlin (CET)
        gone = write_snapshot(bed.settings.environment("test").snapshot_dir, occurrence - timedelta(days=20))
        write_snapshot(bed.settings.environment("test").snapshot_dir, occurrence - timedelta(days=1))
        with serving(bed, fake, control_url) as desk:
            clock = Clock(occurrence - timedelta(minutes=45))
            schedules = desk.bot.watchers.schedules
            schedules.now = desk.bot.executor.clock = clock
            env = bed.settings.environment("test")

            assert kinds(schedules.tick(env)) == ["notice"]
            notice = fake.wait_for_message("C0INCIDENT", lambda m: "will delete" in text_of(m))
            assert "2026-11-25 03:00 Europe/Berlin (CET)" in text_of(notice) and gone in text_of(notice)
            assert "/snapshot pin NAME" in text_of(notice)

            clock.now = occurrence + timedelta(seconds=30)
            assert kinds(schedules.tick(env)) == ["report"]
            report = fake.wait_for_message("C0INCIDENT", lambda m: "deleted 1 snapshot" in text_of(m))
            assert "2026-11-25 03:00 Europe/Berlin (CET)" in text_of(report) and "Oldest kept" in text_of(report)
            assert "Disk after" in text_of(report)


def test_cron_weekdays_and_day_fields_fire_as_cron_does():
    sunday = crontab_trigger("0 3 * * 0", "UTC")  # APScheduler 3's from_crontab would read 0 as Monday
    assert occurrences(sunday, OCCURRENCE)[1] == datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)
    assert occurrences(crontab_trigger("0 3 * * 7", "UTC"), OCCURRENCE)[1].weekday() == 6
    either = crontab_trigger("0 3 1 * 1", "UTC")  # the 1st or a Monday, as cron reads both day fields
    assert occurrences(either, OCCURRENCE) == (datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc),
                                               datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc))
    berlin = occurrences(crontab_trigger("0 3 * * *", "Europe/Berlin"), OCCURRENCE)
    assert berlin[1] == datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)


def test_the_schedule_time_zone_is_checked(tmp_path):
    from commands.config import parse_settings
    from commands.errors import ConfigError
    document = {"environments": {"test": {"database_url": "postgresql://x@h/db", "migrations_dir": "m",
                                          "snapshot_dir": "s", "require_approval": []}}}
    assert parse_settings(document, source="t", base_dir=tmp_path, environ={}).schedule_timezone == "UTC"
    zoned = parse_settings({**document, "schedule": {"timezone": "America/New_York"}}, source="t",
                           base_dir=tmp_path, environ={})
    assert zoned.schedule_timezone == "America/New_York"
    assert zoned.environment("test").cleanup_notice_minutes == 60
    with pytest.raises(ConfigError, match="schedule.timezone must be an IANA time zone name"):
        parse_settings({**document, "schedule": {"timezone": "Mars/Olympus"}}, source="t", base_dir=tmp_path,
                       environ={})


def test_a_run_claimed_by_a_replica_that_died_is_taken_over_later_but_not_while_it_may_run(scheduled):
    old_snapshots(scheduled.env.snapshot_dir)
    assert PgJobRuns(scheduled.control_url).claim("cleanup", "test", OCCURRENCE, "run", owner="dead",
                                                  now=OCCURRENCE + timedelta(seconds=1))
    assert scheduled.at(OCCURRENCE + timedelta(minutes=2)) == []  # it may still be running

    taken_over = scheduled.at(OCCURRENCE + timedelta(minutes=32))

    assert kinds(taken_over) == ["report"] and len(taken_over[0].result.deleted) == 3
    assert scheduled.at(OCCURRENCE + timedelta(minutes=70)) == []
