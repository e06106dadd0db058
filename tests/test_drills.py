"""Restore drills on real PostgreSQL: a snapshot restored into a scratch database, checked and
dropped; a bad snapshot caught (one that restores at another version than its manifest says,
one that does not restore) with the alert; drills kept in the control database and shown by
/snapshot list; the schedule run once across two schedulers; the restore time on the card."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

import pytest

from commands import grammar
from commands.errors import UsageError
from commands.approval.results import ApprovalNeeded
from commands.pg.approvals import PgApprovals
from commands.snapshot.drill import ASSUMED_BYTES_PER_SECOND
from bot.slack.blocks.drills import drill_overdue
from commands.pg.alerts import PgAlerts
from commands.pg.job_runs import PgJobRuns
from commands.watch.watch_drill import DrillJob
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.executor import Executor
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from bot.slack.blocks.render import render
from bot.cli.outcome import result_json
from bot.cli.shell import message_text
from commands.results import Outcome, State
from commands.snapshot.results import DrillResult
from commands.snapshot.snapshots import MANIFEST_SUFFIX
from commands.pg.scratch import SCRATCH_PREFIX

FILES = {
    "1_orgs.up.sql": "CREATE TABLE orgs (id bigint PRIMARY KEY, name text NOT NULL);",
    "1_orgs.down.sql": "DROP TABLE orgs;",
    "2_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, org_id bigint REFERENCES orgs (id));",
    "2_users.down.sql": "DROP TABLE users;",
}


def scratch_databases(bed) -> list[str]:
    return [r[0] for r in bed.query("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                    (SCRATCH_PREFIX + "%",))]


@pytest.fixture
def drilled(make_bed, control_url):
    bed = make_bed(FILES, control=control_url)
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url))
    bed.control = control_url
    assert bed.run("migrate up").outcome is Outcome.DONE
    bed.execute("INSERT INTO orgs SELECT g, 'org ' || g FROM generate_series(1, 50) g;"
                "INSERT INTO users SELECT g, 1 + g % 50 FROM generate_series(1, 400) g;")
    return bed


def test_a_drill_of_a_good_snapshot_passes_reports_its_restore_time_and_leaves_no_scratch_database(drilled):
    created = drilled.run("snapshot create --reason before-drill")
    result = drilled.run("snapshot drill")
    assert isinstance(result, DrillResult) and result.outcome is Outcome.DONE, result
    assert result.name == created.snapshot.name
    assert result.restore_ms > 0 and result.size == created.snapshot.size
    assert all(c.passed for c in result.checks), result.checks
    assert [c.name for c in result.checks][-4:] == ["restore", "version", "row counts", "foreign keys"]
    assert "public.users 400" in next(c.detail for c in result.checks if c.name == "row counts")
    assert scratch_databases(drilled) == []
    assert drilled.state() == (2, False)  # the managed database was only read


def test_a_drill_catches_a_snapshot_that_restores_at_another_version_than_its_manifest_says(drilled):
    env = drilled.settings.environment("test")
    # A snapshot whose manifest claims version 1 of a database at version 2 (as a dump taken
    # while someone migrated, or a manifest written by a broken tool, would be).
    lying = PgDumpSnapshotter().create(env, reason="lying", actor="alice", state=State(version=1, dirty=False))
    result = drilled.run(f"snapshot drill test {lying.name}")
    assert result.outcome is Outcome.FAILED
    version = next(c for c in result.checks if c.name == "version")
    assert not version.passed and version.detail == "schema_migrations holds 2, the manifest says 1"
    assert scratch_databases(drilled) == []


def snapshot_granting_to_a_dropped_role(bed) -> tuple[str, str]:
    """A new snapshot of ``bed`` that does not restore: its GRANT names a role dropped since.
    Returns the snapshot's name and the role's."""
    ghost = f"drill_ghost_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(ghost)
    bed.execute(sql.SQL("CREATE ROLE {role}; GRANT SELECT ON orgs TO {role}").format(role=role))
    name = bed.run("snapshot create --reason with-a-grant").snapshot.name
    bed.execute(sql.SQL("DROP OWNED BY {role}; DROP ROLE {role}").format(role=role))
    return name, ghost


def test_a_drill_catches_a_snapshot_that_does_not_restore_and_drops_the_scratch_database(drilled):
    name, ghost = snapshot_granting_to_a_dropped_role(drilled)
    result = drilled.run("snapshot drill")
    assert result.name == name and result.outcome is Outcome.FAILED
    restore = next(c for c in result.checks if c.name == "restore")
    assert not restore.passed and f'role "{ghost}" does not exist' in restore.detail
    assert result.restore_ms is None and scratch_databases(drilled) == []
    text = message_text(render(result, now=datetime.now(timezone.utc), command="/snapshot drill"))
    assert "FAILED: this snapshot would not restore as it should" in text


def test_a_drill_of_an_environment_without_snapshots_says_so(make_bed):
    result = make_bed(FILES).run("snapshot drill")
    assert result.outcome is Outcome.NO_CHANGE and result.name is None


def test_drill_results_are_kept_and_snapshot_list_marks_each_drilled_snapshot(drilled):
    first = drilled.run("snapshot create --reason first").snapshot.name
    second = drilled.run("snapshot create --reason second").snapshot.name
    assert drilled.run(f"snapshot drill test {first}").outcome is Outcome.DONE
    kept = PgDatabases().drills(drilled.control).latest("test")
    assert set(kept) == {first} and kept[first].passed and kept[first].restore_ms > 0
    listed = drilled.run("snapshot list")
    assert listed.drills[first].passed and second not in listed.drills
    text = message_text(render(listed, now=datetime.now(timezone.utc), command="/snapshot list"))
    row = next(line for line in text.splitlines() if first in line)
    assert "drill passed" in row
    assert "drill" not in next(line for line in text.splitlines() if second in line)
    listed_json = json.loads(result_json(listed, 0))
    assert listed_json["drills"][first]["passed"] is True and listed_json["drills"][first]["snapshot"] == first


def test_drill_takes_env_and_name_in_either_order_and_defaults_to_the_newest():
    name = "production_20260128_154500_v5_manual"
    assert grammar.parse("/snapshot drill") == grammar.SnapshotDrill()
    assert grammar.parse("/snapshot drill production") == grammar.SnapshotDrill(env="production")
    assert grammar.parse(f"/snapshot drill production {name}") == grammar.SnapshotDrill(env="production", name=name)
    assert grammar.parse(f"/snapshot drill {name} production") == grammar.SnapshotDrill(env="production", name=name)
    assert grammar.parse(grammar.canonical(grammar.SnapshotDrill(name=name), "staging")) == \
        grammar.SnapshotDrill(env="staging", name=name)
    with pytest.raises(UsageError, match="'staging' is not a snapshot name"):
        grammar.parse("/snapshot drill production staging")


def test_a_restores_approval_card_and_rollback_option_say_how_long_it_will_take(drilled):
    drilled.executor.approvals = PgApprovals(drilled.control)
    drilled.executor.settings = drilled.settings = dataclasses.replace(drilled.settings, environments={
        "test": dataclasses.replace(drilled.settings.environment("test"), require_approval=("restore",))})
    name = drilled.run("snapshot create --reason before-the-change").snapshot.name
    now = datetime.now(timezone.utc)

    undrilled = drilled.run(f"snapshot restore {name}")
    assert isinstance(undrilled, ApprovalNeeded)
    guess = undrilled.request.impact.restore_estimate
    assert guess.drilled is None and guess.rate == ASSUMED_BYTES_PER_SECOND
    assert "at an assumed 2.0 MB/s: no drill has timed a restore here yet" in message_text(
        render(undrilled, now=now, command="/snapshot restore"))

    drill = drilled.run(f"snapshot drill test {name}")
    assert drill.outcome is Outcome.DONE
    timed = drilled.run(f"snapshot restore {name}")
    card = message_text(render(timed, now=now, command="/snapshot restore"))
    estimate = timed.request.impact.restore_estimate
    assert estimate.drilled == name and estimate.seconds == pytest.approx(drill.restore_ms / 1000)
    assert "Restore time: about" in card and f"scaled from the drill of `{name}`" in card

    options = drilled.run("rollback")
    restore = next(o for o in options.options if o.method == "restore")
    assert restore.impact.restore_estimate.drilled == name
    assert f"scaled from the drill of `{name}`" in message_text(render(options, now=now, command="/rollback"))


# --- the schedule ---------------------------------------------------------------------------------

def plant_bad_snapshot(bed, kind: str) -> str:
    """The newest snapshot of ``bed``, broken as ``kind`` says: ``version`` restores at another
    version than its manifest records; ``restore`` does not restore (its GRANT names a role gone since)."""
    if kind == "version":
        env = bed.settings.environment("test")
        return PgDumpSnapshotter().create(env, reason="lying", actor="alice", state=State(version=1, dirty=False)).name
    return snapshot_granting_to_a_dropped_role(bed)[0]


@pytest.mark.parametrize("kind, says", [("version", "schema_migrations holds 2, the manifest says 1"),
                                        ("restore", "does not exist")])
def test_a_scheduled_drill_of_a_bad_snapshot_alerts_the_channel_and_a_passing_one_resolves_it(
        make_bed, control_url, kind, says):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], drill_schedule="0 4 * * *")
        with serving(bed, fake, control_url) as desk:
            assert bed.run("migrate up").outcome is Outcome.DONE
            bad = plant_bad_snapshot(bed, kind)
            env = bed.settings.environment("test")
            drills = desk.bot.watchers.drills
            drills.now = lambda: datetime(2026, 11, 24, 4, 1, tzinfo=timezone.utc)

            assert [e.kind for e in drills.tick(env)] == ["failed"]
            alert = fake.wait_for_message("C0INCIDENT", lambda m: "scheduled restore drill FAILED" in text_of(m))
            assert bad in text_of(alert) and says in text_of(alert)
            assert drills.tick(env) == []  # the same occurrence: drilled once

            assert bed.run("snapshot create --reason good").outcome is Outcome.DONE
            drills.now = lambda: datetime(2026, 11, 25, 4, 1, tzinfo=timezone.utc)
            assert [e.kind for e in drills.tick(env)] == ["report", "resolved"]
            fake.wait_for_message("C0INCIDENT", lambda m: m.thread_ts == alert.ts and "passed" in text_of(m))
            assert PgAlerts(control_url).open_alert("test", "drill") is None


def test_a_scheduled_drill_runs_once_across_two_schedulers(drilled):
    drilled.run("snapshot create --reason shared")
    env = drilled.settings.environment("test")
    occurrence = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)
    jobs = [DrillJob(drilled.executor, PgJobRuns(drilled.control), PgAlerts(drilled.control), owner=owner)
            for owner in ("replica-a", "replica-b")]
    start = threading.Barrier(2)
    said: list[list] = [[], []]

    def tick(i: int) -> None:
        start.wait()
        said[i] = jobs[i].tick(env, occurrence=occurrence, now=occurrence)

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(events) for events in said) == [0, 1]
    with psycopg.connect(drilled.control) as conn:
        assert conn.execute("SELECT count(*) FROM dbops_drills").fetchone() == (1,)


def test_no_passed_drill_within_drill_max_age_days_raises_a_reminder_once_a_day_until_one_passes(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, drill_schedule="0 4 * * 0", drill_max_age_days=7)
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url))
    env = bed.settings.environment("test")
    job = DrillJob(bed.executor, PgJobRuns(control_url), PgAlerts(control_url), owner="replica-a")
    now = datetime.now(timezone.utc)
    first = now - timedelta(days=8)
    # The schedule's first occurrence, 8 days ago, found nothing to drill; nobody is reminded yet
    # (a schedule just configured is not late).
    assert [e.result.name for e in job.tick(env, occurrence=first, now=first)] == [None]

    assert [e.kind for e in job.tick(env, occurrence=None, now=now)] == ["overdue"]
    assert job.tick(env, occurrence=None, now=now + timedelta(hours=3)) == []  # not again the same day
    reminded = job.tick(env, occurrence=None, now=now + timedelta(days=1))
    assert [(e.kind, e.alert.reminders) for e in reminded] == [("overdue", 1)]
    text = message_text(drill_overdue("test", None, 7))
    assert "no restore drill has passed in 7 days: no drill has ever passed here" in text

    assert bed.run("migrate up").outcome is Outcome.DONE  # takes a pre-migration snapshot
    assert [e.kind for e in job.tick(env, occurrence=now, now=now)] == ["report"]
    assert PgAlerts(control_url).open_alert("test", "drill_overdue") is None


def test_a_drill_fails_when_a_large_table_restores_with_far_fewer_rows_than_the_manifest_recorded(drilled):
    name = drilled.run("snapshot create --reason counted").snapshot.name
    manifest_path = drilled.settings.environment("test").snapshot_dir / (name + MANIFEST_SUFFIX)
    manifest = json.loads(manifest_path.read_text())
    manifest["table_rows"] = {"public.users": 4000, "public.orgs": 50}  # the dump holds 400 users
    manifest_path.write_text(json.dumps(manifest))

    result = drilled.run(f"snapshot drill test {name}")
    rows = next(c for c in result.checks if c.name == "row counts")
    assert result.outcome is Outcome.FAILED and not rows.passed
    assert rows.detail == "public.users: 400 of 4000"


def test_a_drill_compares_the_largest_tables_with_the_row_estimates_every_manifest_records(drilled):
    drilled.execute("ANALYZE")
    name = drilled.run("snapshot create --reason estimated").snapshot.name
    manifest_path = drilled.settings.environment("test").snapshot_dir / (name + MANIFEST_SUFFIX)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["row_estimates"]["public.users"] == 400 and "table_rows" not in manifest
    rows = next(c for c in drilled.run(f"snapshot drill test {name}").checks if c.name == "row counts")
    assert rows.passed and rows.detail == "public.users 400, public.orgs 50, public.schema_migrations 1, as recorded"

    manifest["row_estimates"]["public.users"] = 4000  # as if the dump had lost most of them
    manifest_path.write_text(json.dumps(manifest))
    rows = next(c for c in drilled.run(f"snapshot drill test {name}").checks if c.name == "row counts")
    assert not rows.passed and rows.detail == "public.users: 400 of 4000"

    del manifest["row_estimates"]  # a snapshot taken before manifests recorded them
    manifest_path.write_text(json.dumps(manifest))
    rows = next(c for c in drilled.run(f"snapshot drill test {name}").checks if c.name == "row counts")
    assert rows.passed and rows.detail.endswith("(the manifest records none to compare)")
