"""The dirty-state watcher's messages: the alert (with the rollback plan's buttons), the
reminder and the resolved message in the alert's thread."""

from __future__ import annotations

from datetime import datetime

from bot.slack.blocks.kit import Card, Message, bold, code, esc, extended, plain, user_ref, when
from bot.slack.blocks.migrate import snapshot_version
from bot.slack.blocks.statements import invalid_indexes_text
from bot.slack.blocks.wording import age_text, at_version, number, span_text
from commands.watch.results import AlertEvent
from commands.rollback.results import RollbackPlan


def _facts(event: AlertEvent, now: datetime) -> list[tuple[str, str]]:
    a = event.alert
    facts = [("Since", f"{when(a.opened_at)} ({age_text(now - a.opened_at)})")]
    if a.subject == "dirty":
        facts.insert(0, ("Failed migration", code(a.failed_file) if a.failed_file else at_version(a.version)))
    else:
        facts.insert(0, ("Newest migration file", number(a.latest_file_version)
                         if a.latest_file_version is not None else "none"))
    if a.snapshot is not None:
        facts.append(("Newest snapshot before it", f"{code(a.snapshot.name)}\n{when(a.snapshot.created_at)}, "
                                                   f"{snapshot_version(a.snapshot)}"))
    else:
        facts.append(("Newest snapshot before it", "none in the snapshot directory"))
    return facts


def _headline(event: AlertEvent) -> str:
    a = event.alert
    if a.subject == "dirty":
        return (f"{a.env}: migration {a.version} failed and left the database DIRTY. Deploys and migrations are "
                "blocked until it is recovered.")
    return (f"{a.env}: the database is at version {a.version}, which no migration file has "
            "(a version mismatch: the migration files and the database disagree).")


def alert(event: AlertEvent, plan: RollbackPlan | Message | None, *, now: datetime,
          render_plan) -> Message:
    """The alert, followed by the recovery options of /rollback as buttons (``plan``)."""
    headline = _headline(event)
    card = Card(headline).section(f":rotating_light: {bold(esc(headline))}").fields(_facts(event, now))
    a = event.alert
    if a.subject == "dirty" and a.invalid_indexes:  # what the failed file left is known: say it and its fix
        card.section(invalid_indexes_text(a.invalid_indexes, env=a.env, version=a.version,
                                          previous=a.previous_version))
    message = card.message()
    if isinstance(plan, RollbackPlan) and plan.options:
        options = render_plan(plan, now)
        message = extended(message, *options.blocks[1:])  # its header repeats the alert's
    elif isinstance(plan, Message):  # the plan could not be made: say why, keep the alert
        message = extended(message, *plan.blocks)
    return message


def reminder(event: AlertEvent, *, now: datetime) -> Message:
    a = event.alert
    state = "still dirty" if a.subject == "dirty" else "still at a version no file has"
    text = (f"Reminder: {a.env} is {state} at version {a.version}, for {span_text(now - a.opened_at)} now "
            f"(reminder {a.reminders}). The options are in the message above.")
    return Card(text).section(esc(text)).message()


def resolved(event: AlertEvent, *, now: datetime) -> Message:
    a, s = event.alert, event.state
    how = (f"by {user_ref(a.resolved_by)} with {code(a.resolved_with)}" if a.resolved_by and a.resolved_with
           else "outside dbops (the migrate CLI, a deploy script or by hand)")
    text = (f"Resolved: {bold(esc(a.env))} is clean at {at_version(s.version)} after "
            f"{esc(span_text((a.resolved_at or now) - a.opened_at))}. Fixed {how}.")
    return Card(plain(text)).section(f":white_check_mark: {text}").message()
