"""What PostgreSQL says of a migration's statements, in the channel and the shell: a long statement's
progress while it runs, and the INVALID index a failed CREATE INDEX CONCURRENTLY left (the failure's
card and the dirty alert). Golden files (JSON and terminal text) and Slack's limits."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.cli.shell import message_text
from bot.slack.blocks import alerts as blocks_alerts
from bot.slack.blocks.render import render, render_progress
from bot.slack.blocks.rollback import plan as render_plan
from bot.slack.blocks.statements import percent
from commands.results import Progress, State
from commands.sessions import InvalidIndex, StatementProgress
from commands.watch.results import Alert, AlertEvent
from tests.test_blocks import NAMES, NOW, PRE_MIGRATION, V3, V4, assert_matches_golden, migrate_failed, \
    rollback_plan_dirty

INDEX = InvalidIndex(schema="public", name="users_email_key", table="public.users")
FILE = f"{V4}_{NAMES[V4]}.up.sql"


def progress(statement: StatementProgress):
    return render_progress(command="/migrate up production", user="U0ALICE", elapsed_s=95.2,
                           progress=Progress(step="apply", detail=FILE, statement=statement))


def failed_with_invalid_index():
    result = migrate_failed(dirty=True)
    error = dataclasses.replace(result.failure.error, invalid_indexes=(INDEX,))
    return dataclasses.replace(result, failure=dataclasses.replace(result.failure, error=error))


def dirty_alert():
    alert = Alert(id=9, env="production", subject="dirty", version=V4, opened_at=NOW - timedelta(minutes=3),
                  notified_at=NOW - timedelta(minutes=3), reminders=0, failed_file=FILE, latest_file_version=V4,
                  snapshot=PRE_MIGRATION, invalid_indexes=(INDEX,), previous_version=V3)
    event = AlertEvent(kind="opened", alert=alert, state=State(version=V4, dirty=True))
    return blocks_alerts.alert(event, rollback_plan_dirty(), now=NOW, render_plan=render_plan)


BUILDING = StatementProgress(statement="CREATE UNIQUE INDEX CONCURRENTLY", line=1, seconds=83.0,
                             command="CREATE INDEX CONCURRENTLY", relation="users", phase="building index: scanning table",
                             done=18_422, total=40_960, unit="blocks")

SAMPLES = {
    "progress_index_build": lambda: progress(BUILDING),
    "progress_index_waiting": lambda: progress(dataclasses.replace(
        BUILDING, phase="waiting for writers before build", done=0, total=1, unit="transactions", waiting_for=48213)),
    "progress_no_view": lambda: progress(StatementProgress(statement="ALTER TABLE", line=3, seconds=61.0,
                                                           seen="no_view", server_version=160004)),
    "progress_copy_on_13": lambda: progress(StatementProgress(statement="COPY", line=2, seconds=12.0, seen="no_view",
                                                              server_version=130016)),
    "progress_whole_file": lambda: progress(StatementProgress(statement="The whole file", seconds=75.0, seen="no_view",
                                                              server_version=180001)),
    "progress_restore": lambda: render_progress(
        command=f"/snapshot restore {PRE_MIGRATION.name} production", user="U0ALICE", elapsed_s=312.0,
        progress=Progress(step="restore", detail=PRE_MIGRATION.name, statement=StatementProgress(
            statement="The restore", seconds=301.0, command="COPY FROM", phase="COPY FROM", done=1_204_311,
            unit="rows"))),
    "progress_hidden": lambda: progress(StatementProgress(statement="VACUUM FULL", line=1, seconds=30.0,
                                                          seen="hidden")),
    "migrate_failed_invalid_index": lambda: render(failed_with_invalid_index(), now=NOW,
                                                   command="/migrate up production"),
    "alert_dirty_invalid_index": dirty_alert,
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_statement_message_matches_its_golden_files(name: str) -> None:
    assert_matches_golden(name, SAMPLES[name]())


def test_index_build_progress_says_phase_blocks_and_percent() -> None:
    text = SAMPLES["progress_index_build"]().blocks[0]["text"]["text"]
    assert "building index: scanning table, 18,422 of 40,960 blocks (44%)" in text
    assert "CREATE UNIQUE INDEX CONCURRENTLY (line 1) on `users`" in text


def test_a_waiting_build_names_the_transaction_it_waits_for() -> None:
    text = SAMPLES["progress_index_waiting"]().blocks[0]["text"]["text"]
    assert "waiting for writers before build, 0 of 1 transactions (0%); waiting for pid 48213" in text


def test_a_statement_with_no_progress_view_says_so_plainly() -> None:
    assert "PostgreSQL has no progress view for ALTER TABLE" in SAMPLES["progress_no_view"]().text
    assert "PostgreSQL 13 has no progress view for COPY (14 and later have one)" in \
        SAMPLES["progress_copy_on_13"]().text
    assert "hidden from dbops' role" in SAMPLES["progress_hidden"]().text


@pytest.mark.parametrize(("done", "total", "shown"), [(0, 10, 0), (5, 10, 50), (999, 1000, 99), (1000, 1000, 100),
                                                      (3, 0, 0)])
def test_percent_never_says_100_before_the_work_is_done(done: int, total: int, shown: int) -> None:
    assert percent(done, total) == shown


def test_failed_concurrent_build_names_its_invalid_index_and_the_fix() -> None:
    for message in (SAMPLES["migrate_failed_invalid_index"](), dirty_alert()):
        text = message_text(message)
        assert "INVALID index left behind: `public.users_email_key` on `public.users`" in text
        assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_key";' in text
        assert f"migrate force {V3} production" in text
        assert "rollback production --recover" in text
