"""Lock waits in Slack: the progress while a migration waits, the blocked result with its
buttons, the unblock request and its result: golden files (JSON and terminal text), Slack's
limits, and what each must say."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.cli.shell import message_text
from bot.slack.blocks.render import render, render_progress
from commands import grammar
from commands.approval.results import ApprovalNeeded, Impact
from commands.errors import UsageError
from commands.migrate.results import MigrateResult, StepFailure, UnblockResult
from commands.results import Outcome, Progress, SqlError, State
from commands.sessions import Blocker, LockWait
from tests.test_blocks import IDLE_BLOCKER, NOW, assert_matches_golden, migrate_done, plan_result, request

REPORT = Blocker(pid=48213, session_start=NOW - timedelta(hours=2, seconds=0.25), application_name="monthly-report",
                 client="10.20.0.7", user="reporting", state="active", xact_start=NOW - timedelta(minutes=14),
                 state_since=NOW - timedelta(minutes=14), xact_seconds=840.0, state_seconds=840.0,
                 query="SELECT customer_id, sum(total) FROM orders JOIN users USING (id) WHERE email LIKE '%@acme.com' "
                       "GROUP BY 1", query_trimmed=True, lock="AccessShareLock", relation="users")
IDLE = IDLE_BLOCKER
HIDDEN = Blocker(pid=3301, session_start=NOW - timedelta(days=1), application_name="", client="unknown",
                 user="postgres", state=None, hidden=True, superuser=True, lock="AccessShareLock", relation="users")
WAIT = LockWait(waited_for="AccessExclusiveLock on users", blockers=(REPORT, IDLE, HIDDEN), attempts=6, retries=5)
LOCK_TIMEOUT = SqlError(message="canceling statement due to lock timeout", sqlstate="55P03", line=1)


def blocked() -> MigrateResult:
    done = migrate_done()
    return dataclasses.replace(done, outcome=Outcome.FAILED, after=done.before, steps=done.steps[:1], lock_wait=WAIT,
                               failure=StepFailure(version=42, name="users_email", direction="up",
                                                   filename="42_users_email.up.sql", mode="transactional",
                                                   error=LOCK_TIMEOUT))


def unblock_request() -> ApprovalNeeded:
    command = grammar.MigrateUnblock(env="production", pid=REPORT.pid, session=REPORT.session_start.isoformat(),
                                     retry=True)
    return ApprovalNeeded(env="production", request=request(
        operation="unblock", command=grammar.canonical(command, "production"),
        impact=Impact(before=State(version=41, dirty=False), blocker=REPORT)))


SAMPLES = {
    "progress_lock_wait": lambda: render_progress(
        command="/migrate up production", user="U0ALICE", elapsed_s=9.5, progress=Progress(
            step="lock-wait", detail="42_users_email.up.sql",
            lock_wait=dataclasses.replace(WAIT, attempts=2, next_in_s=1.7))),
    "migrate_blocked": lambda: render(blocked(), now=NOW, command="/migrate up production"),
    "migrate_after_lock_waits": lambda: render(dataclasses.replace(migrate_done(), lock_wait=dataclasses.replace(
        WAIT, attempts=3, blockers=(IDLE,))), now=NOW, command="/migrate up production"),
    "approval_needed_unblock": lambda: render(unblock_request(), now=NOW, command="/migrate unblock"),
    "unblocked_and_retried": lambda: render(UnblockResult(
        env="production", pid=REPORT.pid, terminate=False, blocker=REPORT, signalled=True, retry=migrate_done()),
        now=NOW, command="/migrate unblock"),
    "plan_blockers": lambda: render(dataclasses.replace(plan_result(), blockers=(REPORT, IDLE)), now=NOW,
                                    command="/migrate plan production"),
    "progress_blockers": lambda: render_progress(
        command="/migrate up production", user="U0ALICE", elapsed_s=31.0, progress=Progress(
            step="blockers", lock_wait=LockWait(waited_for=None, blockers=(IDLE,), attempts=0, retries=0,
                                                next_in_s=29.0))),
    "unblocked_gone": lambda: render(UnblockResult(
        env="production", pid=IDLE.pid, terminate=True, blocker=None, signalled=False, gone=True,
        outcome=Outcome.NO_CHANGE), now=NOW, command="/migrate unblock"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_lock_wait_message_matches_its_golden_files(name: str) -> None:
    assert_matches_golden(name, SAMPLES[name]())


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def test_a_blocked_migration_names_its_blockers_and_says_the_database_is_clean() -> None:
    shown = message_text(SAMPLES["migrate_blocked"]())
    assert "failed; the database is clean at version 20260128003" in shown and "AccessExclusiveLock on users 6 times" in shown
    assert "pid 48213 (monthly-report, user reporting, from 10.20.0.7), active for 14 minutes" in shown
    assert "pid 51007 (api, user app, from 10.20.0.12), idle in transaction for 19 minutes" in shown
    assert "(trimmed)" in shown and "literals included" in shown
    assert "from a client hidden from dbops' role" in shown and "query hidden" in shown


def test_only_a_running_query_is_offered_a_cancel_and_each_button_names_the_session_it_may_signal() -> None:
    offered = buttons(SAMPLES["migrate_blocked"]())
    assert [b["text"]["text"] for b in offered] == [
        "Cancel query of 48213 and retry", "End session 48213 and retry", "End session 51007 and retry"]
    commands = [grammar.parse(b["value"]) for b in offered]
    assert commands[0] == grammar.MigrateUnblock(env="production", pid=48213, terminate=False, retry=True,
                                                 session=REPORT.session_start.isoformat())
    assert commands[2].session == IDLE.session_start.isoformat() and commands[2].terminate
    assert all(b["confirm"]["confirm"]["text"] == "Ask for it" for b in offered)


def test_the_unblock_request_card_names_the_session_and_asks_to_confirm() -> None:
    message = SAMPLES["approval_needed_unblock"]()
    shown = message_text(message)
    assert "Cancels the running query of pid 48213 (monthly-report" in shown and "Then it runs" in shown
    approve = buttons(message)[0]
    assert approve["confirm"]["text"]["text"].startswith("Cancels the running query of pid 48213 (monthly-report)")


def test_unblock_parses_and_words_itself_back() -> None:
    command = grammar.parse("/migrate unblock 4242 production --terminate --retry")
    assert command == grammar.MigrateUnblock(env="production", pid=4242, terminate=True, retry=True)
    assert grammar.parse(grammar.canonical(command, "production")) == command
    assert grammar.changes_state(command)
    for bad, said in (("migrate unblock 4242", "--cancel"), ("migrate unblock 4242 --cancel --terminate", "--cancel"),
                      ("migrate unblock 0 --cancel", "not a process id"),
                      ("migrate unblock 1 --cancel --session 2026-12-01T10:00:00", "session's start")):
        with pytest.raises(UsageError) as info:
            grammar.parse(bad)
        assert said in info.value.message
