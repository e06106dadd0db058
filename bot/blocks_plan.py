"""Slack wording for ``/migrate plan``: the pending migrations in order, each with its lint
findings (severity marked, accepted ones with their reason) and what it locks."""

from __future__ import annotations

from bot.blocks_kit import Card, Message, bold, code, count, esc, plain, shorten
from bot.blocks_migrate import json_hint, number
from bot.text import at_version
from commands.findings import blocks, rank
from commands.results import Finding, PlanFile, PlanResult

__all__ = ["finding_row", "plan"]

FINDINGS_SHOWN = 12   # per file; the JSON has them all
LOCKS_SHOWN = 6       # per file
FILES_SHOWN = 12      # files given sections of their own; the rest are summed up
MARKS = {"error": ":no_entry: *error*", "warning": ":warning: warning", "info": ":information_source: info"}


def finding_row(f: Finding, blocking: bool) -> str:
    where = f"line {f.line:,}" if f.line is not None else "file"
    mark = MARKS.get(f.severity, esc(f.severity)) + (" (blocks `up`)" if blocking else "")
    source = "squawk " if f.source == "squawk" else ""
    row = f"{mark} · {where} · {source}{code(f.rule, 80)}: {esc(shorten(f.message, 400))}"
    if f.allowed_by is not None:
        row = f"~{mark}~ · {where} · {source}{code(f.rule, 80)} allowed: {esc(shorten(f.allowed_by, 300))}"
    return row


def _file(card: Card, f: PlanFile, r: PlanResult) -> None:
    title = f"*{number(f.version)}* {code(f.filename or f'{f.version}_{f.name} (no up file)')}"
    if f.mode != "transactional":
        title += f" · runs as a whole ({esc(f.mode)})"
    stopping = sum(blocks(x, r.block_severity) for x in f.findings)
    summary = f"{count(len(f.findings), 'finding')}" + (f", {stopping:,} blocking" if stopping else "")
    rows = [finding_row(x, blocks(x, r.block_severity))
            for x in sorted(f.findings, key=lambda x: (x.allowed_by is not None, -rank(x.severity)))]
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
        return Card(plain(headline)).section(headline).message()
    findings = sum(len(f.findings) for f in r.files)
    verdict = (f"{r.blocking:,} finding{'s' if r.blocking != 1 else ''} at or above {esc(r.block_severity)}: "
               f"`/migrate up` will need a second person's approval" if r.blocking else
               "nothing blocks `/migrate up`")
    headline = (f"{bold(r.env)}: {count(len(r.files), 'pending migration')} from {at_version(r.state.version)}, "
                f"{count(findings, 'finding')}; {verdict}")
    card = Card(plain(headline)).section(headline)
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
