"""The scheduled cleanup's messages: the notice before it, the report after it, the alert
when it failed. Every time is shown in the schedule's time zone, named."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, extended, plain
from bot.slack.blocks.snapshots import SNAPSHOTS_SHOWN, cleanup
from bot.slack.blocks.wording import age_text
from commands.watch.schedule import ScheduleEvent
from commands.units import human_size

PIN_HINT = "Pin a snapshot with `/snapshot pin NAME` to keep it."


def zoned(at: datetime, zone: str) -> str:
    """``at`` in ``zone``, named: "2026-11-25 03:00 Europe/Berlin (CET)", "2026-11-25 03:00 UTC"."""
    local = at.astimezone(ZoneInfo(zone))
    abbreviation = local.tzname()
    suffix = "" if abbreviation in (zone, None) else f" ({abbreviation})"
    return f"{local:%Y-%m-%d %H:%M} {zone}{suffix}"


def notice(event: ScheduleEvent, *, now: datetime) -> Message:
    at = zoned(event.occurrence, event.timezone)
    if event.delete:
        headline = (f"{bold(event.env)}: the scheduled snapshot cleanup at {esc(at)} will delete "
                    f"{count(len(event.delete), 'snapshot')} ({human_size(sum(s.size for s in event.delete))})")
    else:
        headline = f"{bold(event.env)}: the scheduled snapshot cleanup at {esc(at)} will delete nothing"
    card = Card(plain(headline)).section(f":broom: {headline}")
    if event.delete:
        card.lines([f"{code(s.name)} · {human_size(s.size)} · {age_text(now - s.created_at)}"
                    for s in event.delete[:SNAPSHOTS_SHOWN]], total=len(event.delete),
                   title="*Will delete:*", more=f"`/snapshot cleanup {event.env} --dry-run` lists them all",
                   max_blocks=3)
        card.context(PIN_HINT)
    return card.message()


def _late(event: ScheduleEvent) -> str:
    return (f"This cleanup was due at {esc(zoned(event.occurrence, event.timezone))} and runs now, late, "
            "because no dbops was running then." if event.caught_up else "")


def report(event: ScheduleEvent, *, now: datetime) -> Message:
    r = event.result
    assert r is not None
    headline = (f"{bold(event.env)}: scheduled snapshot cleanup of "
                f"{esc(zoned(event.occurrence, event.timezone))}: deleted {count(len(r.deleted), 'snapshot')}, "
                f"freed {human_size(r.freed_bytes)}")
    oldest = min((s for s, _ in r.kept), key=lambda s: s.created_at, default=None)
    card = Card(plain(headline)).section(f":broom: {headline}")
    card.context(_late(event))
    card.fields([("Deleted", count(len(r.deleted), "snapshot")), ("Freed", human_size(r.freed_bytes)),
                 ("Kept", count(len(r.kept), "snapshot")),
                 ("Oldest kept", f"{code(oldest.name)}\n{esc(zoned(oldest.created_at, event.timezone))}"
                  if oldest else "none")])
    body = cleanup(r, now)
    return extended(card.message(), *body.blocks[1:])  # its first line repeats the headline


def failed(event: ScheduleEvent, *, now: datetime) -> Message:
    headline = (f"{bold(event.env)}: the scheduled snapshot cleanup of "
                f"{esc(zoned(event.occurrence, event.timezone))} FAILED")
    card = Card(plain(headline)).section(f":rotating_light: {headline}")
    card.section(esc(event.message or "no reason given"))
    card.context(_late(event), f"Nothing more is tried until the next occurrence; `/snapshot cleanup {esc(event.env)}` "
                               "runs it by hand.")
    return card.message()


def render_event(event: ScheduleEvent, *, now: datetime) -> Message:
    renderer = {"notice": notice, "report": report, "failed": failed}[event.kind]
    return renderer(event, now=now)
