"""Slack wording for restore drills: a drill's report, its alerts, and how long a restore
should take (the approval card of a restore and the rollback options show it)."""

from __future__ import annotations

from bot.slack.blocks.kit import Card, Message, bold, code, count, duration_text, esc, plain, when
from bot.slack.blocks.snapshots import check_rows
from commands.results import Outcome
from commands.snapshot.results import DrillRecord, DrillResult, RestoreEstimate
from commands.units import human_size

_SCRATCH = {"scratch_database_url": "the configured scratch server", "the managed server": "the managed server",
            "embedded PostgreSQL": "embedded PostgreSQL"}


def drilled(r: DrillResult) -> Message:
    if r.name is None:
        headline = f"{bold(r.env)}: no snapshot to drill"
        return (Card(plain(headline)).section(headline)
                .section(f"Take one with {code(f'/snapshot create {r.env} --reason TEXT')}, then drill it.").message())
    took = f" in {duration_text(r.restore_ms)}" if r.restore_ms is not None else ""
    headline = (f"{bold(r.env)}: drill of {code(r.name)} passed: it restored{took} and checks out"
                if r.outcome == Outcome.DONE else
                f"{bold(r.env)}: drill of {code(r.name)} FAILED: this snapshot would not restore as it should")
    card = Card(plain(headline)).section(headline)
    card.fields([("Restore took", duration_text(r.restore_ms) if r.restore_ms is not None else "did not finish"),
                 ("Size", human_size(r.size)),
                 ("Restored into", f"a scratch database on {_SCRATCH.get(r.scratch, esc(r.scratch))}"
                  if r.scratch else "nothing (it was not restored)")])
    card.lines(check_rows(r.checks))
    notes = ["The scratch database was dropped; the managed database was not touched."]
    if r.outcome != Outcome.DONE:
        notes.append(f"Do not count on this snapshot: take a new one ({code(f'/snapshot create {r.env}')}) and "
                     f"drill it ({code(f'/snapshot drill {r.env}')}).")
    if not r.recorded:
        notes.append("No control database is configured, so this drill is not remembered.")
    return card.context(*notes).message()


def estimate_text(e: RestoreEstimate) -> str:
    """How long a restore should take, and what the figure rests on."""
    figure = duration_text(max(e.seconds, 1) * 1000)
    if e.drilled is not None:
        return (f"about {figure} ({human_size(e.size)}, scaled from the drill of {code(e.drilled)} "
                f"{when(e.drilled_at)} at {human_size(int(e.rate))}/s)")
    return (f"about {figure}, estimated from its size ({human_size(e.size)}) at an assumed "
            f"{human_size(int(e.rate))}/s: no drill has timed a restore here yet")


def drill_alert(env: str, r: DrillResult | None, fault: str | None) -> Message:
    """A scheduled drill failed (``r``) or could not run (``fault``): opened as an alert."""
    headline = f":rotating_light: {bold(env)}: scheduled restore drill FAILED"
    if r is None:
        return (Card(plain(headline)).section(headline).section(f"It could not run: {esc(fault or '')}")
                .context(f"Run it by hand to see why: {code(f'/snapshot drill {env}')}.").message())
    report = drilled(r)
    return Message(text=f"{plain(headline)}: {report.text}",
                   blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": headline}}, *report.blocks])


def drill_fault(env: str, fault: str) -> Message:
    """A scheduled drill could not run again, in the open alert's thread."""
    headline = f"{bold(env)}: the scheduled restore drill could not run: {esc(fault)}"
    return Card(plain(headline)).section(headline).message()


def drill_overdue(env: str, last: DrillRecord | None, max_age_days: int) -> Message:
    """No drill has passed within ``drill_max_age_days``."""
    since = (f"the last passed drill was of {code(last.snapshot)} {when(last.drilled_at)}" if last is not None
             else "no drill has ever passed here")
    headline = (f":warning: {bold(env)}: no restore drill has passed in {count(max_age_days, 'day')}: "
                f"{since}")
    card = Card(plain(headline)).section(headline)
    return card.section(f"Run one: {code(f'/snapshot drill {env}')}.").message()
