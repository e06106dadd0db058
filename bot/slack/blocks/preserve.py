"""Slack wording for the rows a restore would lose and those it kept: the loss on a restore's
card and rollback option, the per-table report of a ``--preserve`` restore or a re-import,
and ``/snapshot preserved``."""

from __future__ import annotations

from datetime import datetime

from bot.slack.blocks.kit import Card, Message, bold, code, count, either, esc, plain, when
from bot.slack.blocks.wording import age_text
from commands.preserve.results import LossEstimate, PreservedListResult, PreserveReport, ReimportResult
from commands.results import Outcome
from commands.units import human_size

TABLES_NAMED = 8
BUNDLES_SHOWN = 30
PRESERVE_ACTION = "dbops_restore_preserve"  # the request card's button: ask again, keeping the rows


def table_name(table: str) -> str:
    """``public.users`` as people say it (``users``); other schemas keep theirs."""
    return table.removeprefix("public.")


def loss_text(loss: LossEstimate) -> str:
    """``users: 1,204 rows written since the snapshot; orders: 88; 3 tables changed without a
    timestamp column to tell which rows`` (with what could not be counted, and why)."""
    parts = []
    for n, t in enumerate(loss.counted[:TABLES_NAMED]):
        rows = t.rows or 0
        parts.append(f"{esc(table_name(t.table))}: {rows:,}" + (
            f" {'row' if rows == 1 else 'rows'} written since the snapshot" if n == 0 else ""))
    if len(loss.counted) > TABLES_NAMED:
        rest = loss.counted[TABLES_NAMED:]
        parts.append(f"{count(len(rest), 'more table')}: {sum(t.rows or 0 for t in rest):,}")
    if loss.untracked:
        parts.append(f"{count(len(loss.untracked), 'table')} changed without a timestamp column to tell which rows"
                     + (f" ({esc(either([table_name(t) for t in loss.untracked], 'and'))})"
                        if len(loss.untracked) <= 3 else ""))
    if loss.uncountable:
        parts.append("could not count " + either([f"{esc(table_name(t.table))} ({esc(t.why)})"
                                                  for t in loss.uncountable[:TABLES_NAMED]], "and"))
    text = "; ".join(parts) if parts else "no rows written since the snapshot were found"
    if not loss.estimates_known:
        text += (". The snapshot's manifest records no row estimates (an older snapshot): tables without a "
                 "timestamp column could not be compared")
    return text + "."


def keeping_text(preserving: bool, loss: LossEstimate | None) -> str:
    if preserving:
        return ("*With --preserve:* these rows are saved to a bundle beside the snapshots first, then put back "
                "after the restore where they still fit; the rest stay in the bundle.")
    if loss is not None and loss.rows:
        return "Add `--preserve` to save these rows first and put them back after the restore."
    return ""


def report_lines(report: PreserveReport) -> list[str]:
    rows = []
    for t in report.tables:
        parts = [f"{t.imported:,} re-imported"]
        if t.conflicts:
            parts.append(f"{t.conflicts:,} skipped: a row with the same key is there")
        if t.unfit:
            parts.append(f"{t.unfit:,} skipped: {esc(t.why or 'the table no longer fits them')}")
        rows.append(f"{code(table_name(t.table))} {count(t.exported, 'row')}: " + "; ".join(parts))
    return rows


def add_report(card: Card, report: PreserveReport, env: str) -> Card:
    """The per-table report of rows put back, under a restore's or a re-import's headline."""
    kept = sum(t.exported for t in report.tables)
    title = (f"*Rows written since the snapshot ({count(kept, 'row')}, bundle {code(report.bundle)}):*"
             if report.tables else f"*No rows written since the snapshot were found* (bundle {code(report.bundle)}).")
    card.lines(report_lines(report), title=title, max_blocks=3)
    notes = []
    if report.left_in_bundle:
        notes.append(f"{count(report.left_in_bundle, 'row')} not put back stay in {code(report.bundle)}: "
                     f"{code(f'/snapshot reimport {report.bundle} {env}')} tries again (after a fix), "
                     f"{code(f'/snapshot pin {report.bundle} {env}')} keeps it past retention.")
    if report.untracked:
        notes.append(f"{count(len(report.untracked), 'table')} changed without a timestamp column to tell which rows "
                     f"({esc(either([table_name(t) for t in report.untracked[:TABLES_NAMED]], 'and'))}): their "
                     "changes since the snapshot are not in the bundle.")
    return card.context(*notes) if notes else card


def preserved_list(r: PreservedListResult, now: datetime) -> Message:
    headline = (f"{bold(r.env)}: {count(len(r.bundles), 'bundle')} of rows kept by restores ({esc(r.where)})"
                if r.bundles else f"{bold(r.env)}: no bundles of rows kept by restores ({esc(r.where)})")
    card = Card(plain(headline)).section(headline)
    card.lines([f"{code(b.name)} · {age_text(now - b.created_at)} ({when(b.created_at)}) · "
                f"{count(b.rows, 'row')} of {count(b.tables, 'table')} · {human_size(b.size)} · "
                f"before restoring {code(b.snapshot)}" + (" · *pinned*" if b.pinned else "")
                for b in r.bundles[:BUNDLES_SHOWN]], total=len(r.bundles))
    if r.bundles:
        card.context(f"Put a bundle's rows back: {code(f'/snapshot reimport BUNDLE {r.env}')} (rows whose key is "
                     "there already are skipped). Bundles follow the snapshots' retention; pinned ones are kept.")
    return card.message()


def reimported(r: ReimportResult) -> Message:
    n = sum(t.imported for t in r.report.tables)
    headline = (f"{bold(r.env)}: re-imported {count(n, 'row')} from {code(r.report.bundle)}"
                if r.outcome is Outcome.DONE else
                f"{bold(r.env)}: no rows of {code(r.report.bundle)} could be put back")
    return add_report(Card(plain(headline)).section(headline), r.report, r.env).message()
