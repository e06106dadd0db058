"""What each surface says stands on its own: no reply sends the user to a section of a
document they may not have ("the guide's Issue 4", "Method 2", "Scenario 4, option A")."""

from __future__ import annotations

import json
import re

import pytest

from bot.cli.shell import result_text
from commands import grammar
from commands.results import HelpResult, Mismatch, Reason, State
from tests import test_blocks as samples
from tests.test_blocks import NOW, SAMPLES

CITES_A_DOCUMENT = re.compile(r"guide|Issue \d|Method \d|Scenario \d|option [A-Z]\b", re.IGNORECASE)


def shell_results() -> dict[str, object]:
    """A Result of every kind the command line prints, the refusals with each reason."""
    s = samples
    results = {
        "status_clean": s.status_clean(), "status_dirty": s.status_dirty(), "snapshot_list": s.snapshot_list(),
        "migrate_done": s.migrate_done(), "migrate_failed_clean": s.migrate_failed(dirty=False),
        "migrate_failed_dirty": s.migrate_failed(dirty=True), "migrate_force": s.migrate_force(),
        "dry_run": s.dry_run(), "validate": s.validate(), "plan": s.plan_result(), "up_request": s.up_request(),
        "dry_run_request": s.dry_run_request(), "snapshot_create": s.snapshot_created(),
        "verify_failed": s.verify_failed(), "restore": s.restore(), "pin": s.pin(),
        "cleanup": s.cleanup(dry_run=False), "cleanup_dry_run": s.cleanup(dry_run=True), "history": s.history(),
        "help": HelpResult(usage=grammar.all_usage()), "approval_needed": s.approval_needed(),
        "approval_decided": s.approval_decided(), "approvals": s.approvals_list(),
        "rollback_plan_clean": s.rollback_plan_clean(), "rollback_plan_dirty": s.rollback_plan_dirty(),
        "rollback_plan_missing_down": s.rollback_plan_missing_down(), "rollback_result": s.rollback_result(),
        "rollback_result_orphans": s.rollback_result_orphans(), "lock_status_held": s.lock_status(held=True),
        "lock_status_free": s.lock_status(held=False), "lock_release_done": s.lock_release(done=True),
        "lock_release_refused": s.lock_release(done=False),
    }
    details = {
        Reason.LOCK_HELD: dict(holder=s.HOLDER),
        Reason.DIRTY: dict(state=State(version=s.V4, dirty=True)),
        Reason.VERSION_MISMATCH: dict(mismatch=Mismatch(database_version=20260130001, latest_file_version=s.V5,
                                                        ahead=True)),
        Reason.SNAPSHOT_DAMAGED: dict(snapshot=s.PRE_MIGRATION.name, checks=s.verify_failed().checks),
        Reason.OTHER_ENVIRONMENT: dict(snapshot=s.STAGING_SNAPSHOT, owner="staging"),
    }
    for reason in Reason:
        if reason in s.APPROVAL_REASONS:
            results[f"approval_refused_{reason.value}"] = s.approval_refused(reason)
        else:
            results[f"refusal_{reason.value}"] = s.refusal(reason, **details.get(reason, {}))
    return results


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_no_slack_reply_cites_a_section_of_a_document(name: str) -> None:
    text = json.dumps(SAMPLES[name]().blocks)
    assert not CITES_A_DOCUMENT.search(text), CITES_A_DOCUMENT.search(text)


def shown(name: str) -> str:
    """The result ``name`` as the command line prints it."""
    return result_text(shell_results()[name], command="migrate up production", now=NOW)


@pytest.mark.parametrize("name", sorted(shell_results()))
def test_no_shell_reply_cites_a_section_of_a_document(name: str) -> None:
    text = shown(name)
    assert not CITES_A_DOCUMENT.search(text), CITES_A_DOCUMENT.search(text)


# --- each surface speaks its own syntax -------------------------------------------------------------------

SLASH_COMMAND = re.compile(r"(?<![\w./])/(migrate|snapshot|rollback|dbops)\b")


@pytest.mark.parametrize("name", sorted(shell_results()))
def test_a_shell_reply_never_tells_a_slash_command(name: str) -> None:
    text = shown(name)
    assert not SLASH_COMMAND.search(text), SLASH_COMMAND.search(text)


def test_shell_help_lists_every_usage_line_as_the_shell_types_it() -> None:
    lines = result_text(HelpResult(usage=grammar.all_usage()), command="dbops help").splitlines()[2:-1]
    assert "`dbops migrate down --all [ENV]`" in lines and "`dbops lock release [ENV]`" in lines
    assert "`dbops --help`" in lines and "`dbops dbops approve REQUEST`" in lines
    assert len(lines) == len(grammar.all_usage()) and all(line.startswith("`dbops ") for line in lines)


@pytest.mark.parametrize(("text", "shell", "slack"), [
    ("migrate down", "Usage: `dbops migrate down N [ENV]` or `dbops migrate down --all [ENV]`",
     "Usage: `/migrate down N [ENV]` or `/migrate down --all [ENV]`"),
    ("dbops lock sideways", "Usage: `dbops lock status [ENV]` or `dbops lock release [ENV]`",
     "Usage: `/dbops lock status [ENV]` or `/dbops lock release [ENV]`"),
    ("dbops approve", "(its id is on the request's card and in `dbops dbops approvals`)",
     "(its id is on the request's card and in `/dbops approvals`)"),
    ("shrug", "Usage: `dbops migrate …` or `dbops snapshot …` or `dbops rollback …` or `dbops --help`",
     "Usage: `/migrate …` or `/snapshot …` or `/rollback …` or `/dbops help`"),
])
def test_a_usage_error_is_worded_for_the_surface_that_shows_it(text: str, shell: str, slack: str) -> None:
    from bot.slack.blocks.render import render_error
    from bot.cli.outcome import fault_text
    from commands.errors import UsageError

    with pytest.raises(UsageError) as caught:
        grammar.parse(text)
    printed = fault_text(caught.value, command=f"dbops {text}")
    assert shell in printed and "/" + text.split()[0] not in printed
    assert slack in json.dumps(render_error(caught.value, command="/" + text).blocks, ensure_ascii=False)
