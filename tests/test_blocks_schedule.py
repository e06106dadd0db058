"""The scheduled cleanup's Slack messages: golden files, Slack's limits, the time zone named."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

from bot.slack.blocks import schedule as blocks_schedule
from commands.results import Outcome
from commands.watch.schedule import ScheduleEvent
from tests.test_blocks import GOLDEN, MB, NOW, assert_fits_slack, cleanup, snap

BERLIN = datetime(2026, 1, 28, 2, 0, tzinfo=timezone.utc)  # 03:00 in Europe/Berlin (CET)


def notice() -> ScheduleEvent:
    return ScheduleEvent(kind="notice", env="production", occurrence=BERLIN, timezone="Europe/Berlin",
                         delete=(snap(60 * 24 * 9, 20260128002, "manual", size=40 * MB),
                                 snap(60 * 24 * 12, 20260128001, "pre-migration", size=38 * MB)))


def report_caught_up() -> ScheduleEvent:
    return ScheduleEvent(kind="report", env="production", occurrence=BERLIN, timezone="Europe/Berlin",
                         caught_up=True, result=cleanup(dry_run=False))


def failed() -> ScheduleEvent:
    return ScheduleEvent(kind="failed", env="production", occurrence=BERLIN, timezone="UTC", outcome=Outcome.FAILED,
                         message="Could not delete snapshot production_20260119_163000_v20260128002_manual: "
                                 "Read-only file system (/var/lib/togather/db-snapshots). 0 of 2 were deleted "
                                 "before it; the others are still there.")


SAMPLES = {"schedule_notice": notice, "schedule_report_caught_up": report_caught_up, "schedule_failed": failed}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_scheduled_cleanup_message_matches_its_golden_file(name: str) -> None:
    message = blocks_schedule.render_event(SAMPLES[name](), now=NOW)
    assert_fits_slack(message)
    rendered = json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("DBOPS_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with DBOPS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} changed: rerun with DBOPS_UPDATE_GOLDEN=1"


def test_every_time_is_shown_with_its_time_zone() -> None:
    assert blocks_schedule.zoned(BERLIN, "Europe/Berlin") == "2026-01-28 03:00 Europe/Berlin (CET)"
    assert blocks_schedule.zoned(BERLIN, "UTC") == "2026-01-28 02:00 UTC"
    late = json.dumps(blocks_schedule.render_event(report_caught_up(), now=NOW).blocks)
    assert "was due at 2026-01-28 03:00 Europe/Berlin (CET) and runs now, late, because no dbops was running" in late
