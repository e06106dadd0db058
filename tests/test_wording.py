"""Plain wording: each phrase a newcomer tripped over, on the surface where they met it
(Slack blocks and the shell's text), so that none of them comes back."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.slack.blocks.render import render
from bot.cli.shell import result_text
from commands import grammar
from commands import usage
from commands.errors import UsageError
from commands.approval.results import ApprovalNeeded, Impact
from commands.migrate.results import MigrationInfo
from commands.rollback.results import RollbackOption, RollbackPlan
from commands.results import State
from commands.snapshot.results import TableRows
from commands.pg.squawk import SquawkLinter
from tests.test_blocks import NOW, V2, restore, rollback_plan_clean, snapshot_created, request


def shown(message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False) + message.text


def plan_down_to_nothing() -> RollbackPlan:
    """One migration applied; rolling it back leaves golang-migrate's "no version" (-1)."""
    down = RollbackOption(method="down", command="/rollback --steps 1 production", recommended=True, available=True,
                          impact=Impact(before=State(version=V2, dirty=False), target=-1,
                                        reverts=(MigrationInfo(version=V2, name="add_users", has_up=True, has_down=True),)))
    return dataclasses.replace(rollback_plan_clean(), state=State(version=V2, dirty=False), options=(down,))


def test_a_rollback_to_nothing_applied_says_leaving_no_version_on_both_surfaces() -> None:
    slack = shown(render(plan_down_to_nothing(), now=NOW, command="/rollback production"))
    text = result_text(plan_down_to_nothing(), command="rollback production", now=NOW)
    for said in (slack, text):
        assert "leaving no version" in said and "version no version" not in said and "version -1" not in said


def test_a_created_snapshot_says_taken_at_version_not_version_version() -> None:
    said = shown(render(snapshot_created(), now=NOW, command="/snapshot create production"))
    assert "*Taken at*\\nversion " in said and "*Version*\\nversion" not in said


def test_one_row_is_one_row_not_one_rows() -> None:
    result = dataclasses.replace(restore(), largest_tables=(TableRows(table="settings", rows=1),
                                                            TableRows(table="events", rows=1200)))
    slack = shown(render(result, now=NOW, command="/snapshot restore x production"))
    text = result_text(result, command="snapshot restore x production", now=NOW)
    for said in (slack, text):
        assert "1 row" in said and "1 rows" not in said and "1,200 rows" in said


def test_a_request_with_a_900_second_ttl_shown_a_moment_later_expires_in_15_minutes() -> None:
    fresh = request(expires_at=NOW + timedelta(seconds=900) - timedelta(seconds=2))
    slack = shown(render(ApprovalNeeded(env="production", request=fresh), now=NOW, command="/migrate down 2 production"))
    assert "*Expires*\\nin 15 minutes" in slack and "14 minutes" not in slack
    text = result_text(ApprovalNeeded(env="production", request=fresh), command="migrate down 2 production", now=NOW)
    assert "Expires: in 15 minutes" in text and "14 minutes" not in text


def test_squawks_message_and_help_read_as_two_sentences(tmp_path: Path) -> None:
    path = tmp_path / "1_t.up.sql"
    path.write_text("ALTER TABLE t ADD COLUMN c int NOT NULL;\n")
    (findings,) = SquawkLinter().lint([(path, True)])
    messages = [f.message for f in findings]
    assert any("slow operations. Configure a `statement_timeout`" in m for m in messages), messages
    assert not any("operations Configure" in m for m in messages), messages


def test_an_unknown_command_lists_every_command_family_including_rollback() -> None:
    with pytest.raises(UsageError) as info:
        grammar.parse("/frobnicate")
    usage = " ".join(info.value.usage)
    assert all(family in usage for family in ("migrate", "snapshot", "rollback", "dbops"))


def test_the_usage_lines_say_when_a_reason_is_needed_as_the_grammar_enforces_it() -> None:
    # /snapshot create: optional, "manual" when left out.
    assert "[--reason" in " ".join(usage.SNAPSHOT["create"]) and grammar.parse("/snapshot create").reason == "manual"
    # /rollback: none to see the options; required with a target.
    assert grammar.parse("/rollback").reason is None
    with pytest.raises(UsageError):
        grammar.parse("/rollback --steps 1")
    rollback = " ".join(usage.ROLLBACK)
    assert '--recover  --reason "TEXT"]' in rollback and '] [--reason' not in rollback
