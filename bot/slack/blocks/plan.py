"""Slack wording for ``/migrate plan``: the findings that block ``up`` first, all of them,
under a line saying they are why approval is needed; then the pending migrations in order,
each with its other lint findings (severity marked, accepted ones with their reason, lowered
ones with why they are no risk now) and what it locks."""

from __future__ import annotations

from bot.slack.blocks.files import flag_section
from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain, shorten
from bot.slack.blocks.migrate import json_hint
from bot.slack.blocks.wording import at_version, number
from commands.lint.findings import blocking_first
from commands.lint.results import Finding, PlanFile, PlanResult

__all__ = ["blocking_rows", "finding_row", "plan", "why_approval"]

FINDINGS_SHOWN = 12   # per file; the JSON has them all
LOCKS_SHOWN = 6       # per file
FILES_SHOWN = 12      # files given sections of their own; the rest are summed up
BLOCKING_BLOCKS = 8   # sections for the blocking findings: about 60 rows, more than any real plan has
MARKS = {"error": ":no_entry: *error*", "warning": ":warning: warning", "info": ":information_source: info"}


def finding_row(f: Finding, blocking: bool) -> str:
    where = f"line {f.line:,}" if f.line is not None else "file"
    mark = MARKS.get(f.severity, esc(f.severity)) + (" (blocks `up`)" if blocking else "")
    source = "squawk " if f.source == "squawk" else ""
    row = f"{mark} · {where} · {source}{code(f.rule, 80)}: {esc(shorten(f.message, 400))}"
    if f.allowed_by is not None:
        row = f"~{mark}~ · {where} · {source}{code(f.rule, 80)} allowed: {esc(shorten(f.allowed_by, 300))}"
    elif f.live_judgement is not None:
        row += f" Not a risk now: {esc(shorten(f.live_judgement, 300))}."
    return row


def why_approval(n: int, verb: str) -> str:
    return (f"*This finding is why {verb}:*" if n == 1 else f"*These {n:,} findings are why {verb}:*")


def blocking_rows(card: Card, stopping: list[Finding], verb: str, more: str) -> None:
    """Every blocking finding, with its file, before anything else on the card."""
    card.lines([f"{code(f.filename)} " + finding_row(f, True) for f in stopping], max_blocks=BLOCKING_BLOCKS,
               title=why_approval(len(stopping), verb), more=more)


def _file(card: Card, f: PlanFile, r: PlanResult) -> None:
    title = f"*{number(f.version)}* {code(f.filename or f'{f.version}_{f.name} (no up file)')}"
    if f.mode != "transactional":
        title += f" · runs as a whole ({esc(f.mode)})"
    stopping, rest = blocking_first(f.findings, r.block_severity)
    summary = f"{count(len(f.findings), 'finding')}" + (f", {len(stopping):,} blocking (above)" if stopping else "")
    rows = [finding_row(x, False) for x in rest]
    locks = "; ".join(f"line {lk.line:,}: {esc(lk.lock)} on {code(lk.table, 80)} ({esc(lk.statement)})"
                      for lk in f.locks[:LOCKS_SHOWN])
    if len(f.locks) > LOCKS_SHOWN:
        locks += f"; …and {len(f.locks) - LOCKS_SHOWN:,} more"
    card.lines(rows[:FINDINGS_SHOWN], total=len(rows), max_blocks=1, title=f"{title} · {summary}",
               more=json_hint("migrate plan", r.env))
    card.context(f"Locks: {locks}" if locks else "Locks: no table that exists now")


def plan(r: PlanResult) -> Message:
    if not r.files:
        headline = f"{bold(r.env)}: nothing is pending: the database is at {number(r.state.version)}"
        card = Card(plain(headline)).section(headline)
        flag_section(card, r.files_check, r.env, notes=False)
        return card.message()
    findings = sum(len(f.findings) for f in r.files)
    verdict = (f"{r.blocking:,} finding{'s' if r.blocking != 1 else ''} at or above {esc(r.block_severity)}: "
               f"`/migrate up` will need a second person's approval" if r.blocking else
               "nothing blocks `/migrate up`")
    headline = (f"{bold(r.env)}: {count(len(r.files), 'pending migration')} from {at_version(r.state.version)}, "
                f"{count(findings, 'finding')}; {verdict}")
    card = Card(plain(headline)).section(headline)
    stopping = [x for f in r.files for x in blocking_first(f.findings, r.block_severity)[0]]
    if stopping:
        blocking_rows(card, stopping, "`/migrate up` will need approval", json_hint("migrate plan", r.env))
    flag_section(card, r.files_check, r.env, notes=False)
    if r.blockers:
        from bot.slack.blocks.lock_waits import blockers_section  # only when sessions are in the way
        blockers_section(card, r.blockers)
    shown = 0
    for f in r.files[:FILES_SHOWN]:
        if card.room() < 5:  # a file takes up to 3 blocks; keep room for the two closing lines
            break
        _file(card, f, r)
        shown += 1
    rest = r.files[shown:]
    if rest:
        card.context(f"…and {count(len(rest), 'more migration')}, "
                     f"{sum(len(f.findings) for f in rest):,} findings ({json_hint('migrate plan', r.env)})")
    card.context("Accept a finding with `-- dbops:allow RULE reason` in its file, or `lint_allow` in the "
                 "configuration; accepted findings never block.")
    return card.message()
