"""The scheduled drill's Slack messages: golden files (JSON and terminal text) and Slack's limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.slack.blocks import drills as blocks_drills
from commands.snapshot.results import DrillRecord
from tests.test_blocks import MB, NOW, PRE_MIGRATION, assert_matches_golden, drill, drill_not_restored

LAST = DrillRecord(env="production", snapshot=PRE_MIGRATION.name, drilled_at=NOW - timedelta(days=9), passed=True,
                   restore_ms=74_200, size=412 * MB, actor="dbops")

SAMPLES = {
    "drill_alert_version": lambda: blocks_drills.drill_alert("production", drill(passed=False), None),
    "drill_alert_not_restored": lambda: blocks_drills.drill_alert("production", drill_not_restored(), None),
    "drill_alert_fault": lambda: blocks_drills.drill_alert(
        "production", None, "Could not create a scratch database on the managed server: permission denied"),
    "drill_overdue": lambda: blocks_drills.drill_overdue("production", LAST, 7),
    "drill_overdue_never": lambda: blocks_drills.drill_overdue("production", None, 7),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_scheduled_drill_message_matches_its_golden_files(name: str) -> None:
    assert_matches_golden(name, SAMPLES[name]())
