"""The scheduled drill's Slack messages: golden files (JSON and terminal text) and Slack's limits."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from bot.cli.shell import message_text
from bot.slack.blocks import drills as blocks_drills
from commands.snapshot.results import DrillRecord
from tests.test_blocks import GOLDEN, MB, NOW, PRE_MIGRATION, assert_fits_slack, drill, drill_not_restored

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
    message = SAMPLES[name]()
    assert_fits_slack(message)
    rendered = json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    for path, text in ((GOLDEN / f"{name}.json", rendered), (GOLDEN / "terminal" / f"{name}.txt",
                                                             message_text(message) + "\n")):
        if os.environ.get("DBOPS_UPDATE_GOLDEN") == "1":
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden file {path.name}: run with DBOPS_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: rerun with DBOPS_UPDATE_GOLDEN=1"
