"""Slack cards for the drift watcher's alert: opened (with the differences, trimmed), the
reminder and the resolved message in its thread."""

from __future__ import annotations

from datetime import datetime

from bot.slack.blocks.drift import difference_line
from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain

from bot.slack.blocks.wording import number, span_text
from commands.watch.results import AlertEvent

SUBJECTS = ("drift",)
ROWS_SHOWN = 15  # an alert shows the first few; /migrate drift shows them all


def alert(event: AlertEvent, *, now: datetime) -> Message:
    a, d = event.alert, event.alert.drift
    total = d.total if d is not None else 0
    headline = (f"{a.env}: the schema has drifted from version {number(a.version)}: "
                f"{count(total, 'difference')}")
    card = Card(plain(headline)).section(f":warning: {bold(esc(headline))}")
    if d is not None:
        card.lines([code(difference_line(x)) for x in d.differences[:ROWS_SHOWN]], total=total,
                   more=f"{code(f'/migrate drift {a.env}')} lists them all")
    card.context("`+` only in the database, `-` missing from it, `~` different, `!` broken. Changed outside the "
                 "migration files: put it in a migration, or undo it by hand. Checked on drift_check_schedule; "
                 "this thread says when it is gone.")
    return card.message()


def reminder(event: AlertEvent, *, now: datetime) -> Message:
    a = event.alert
    text = (f"Reminder: {a.env} has still drifted from version {a.version}, the same differences, for "
            f"{span_text(now - a.opened_at)} now (reminder {a.reminders}).")
    return Card(text).section(esc(text)).message()


def resolved(event: AlertEvent, *, now: datetime) -> Message:
    a = event.alert
    after = esc(span_text((a.resolved_at or now) - a.opened_at))
    if event.superseded:
        text = (f"Resolved: {bold(esc(a.env))}: these differences are gone after {after}, but the schema has drifted "
                "differently: see the new alert.")
    else:
        version = event.state.version if event.state is not None else a.version
        text = (f"Resolved: {bold(esc(a.env))}: no drift: the schema is exactly version {number(version)} again, "
                f"after {after}.")
    return Card(plain(text)).section(f":white_check_mark: {text}").message()
