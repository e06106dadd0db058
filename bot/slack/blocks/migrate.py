"""Slack wording for migrations: the status card, up/down/goto/force, dry-run and validate.

The plain phrases other renderers share (versions, the lock holder, the guide's recovery
options, a version mismatch, PostgreSQL's error) come from ``bot.slack.blocks.wording``; the terminal
shows these blocks as text (``bot.terminal``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bot.slack.blocks.files import flag_headline, flag_section
from bot.slack.blocks.kit import Card, Message, bold, code, count, duration_text, esc, plain, pre, shorten
from bot.slack.blocks.wording import (RECOVERY_DIRTY, age_text, at_version, holder_text, mismatch_text, number,
                                    sql_error_lines, version_text)
from commands.migrate.results import (DryRunFile, DryRunResult, MigrateResult, MigrationInfo, StatusResult,
                                      StepFailure, StepReport, ValidateResult)
from commands.errors import LOCK_NOT_AVAILABLE
from commands.results import FileProblem, LockHolder, Mismatch, Outcome, SqlError, State
from commands.snapshot.results import SnapshotInfo

PENDING_SHOWN = 15
ROWS_SHOWN = 30
ERROR_CHARS = 1500   # of PostgreSQL's message; detail, hint and context get a third each


def json_hint(verb: str, env: str) -> str:
    return f"use {code(f'dbops {verb} {env} --format json')} for all"


def snapshot_version(s: SnapshotInfo) -> str:
    if s.version is None:
        return "version unknown"
    return ("no version" if s.version < 0 else f"version {s.version}") + (" (dirty)" if s.dirty else "")


# --- pieces shared with the refusals -------------------------------------------------------

def recovery_dirty(state: State, env: str, snapshot: str | None = None) -> str:
    """The guide's three options (Issue 2) for a dirty database, then the commands for them here."""
    v = state.version
    lines = [line.strip().format(v=v) for line in RECOVERY_DIRTY]
    lines[1] = f"*{lines[1]}*"
    restore = f"/snapshot restore {snapshot} {env}" if snapshot else f"/snapshot list {env}"
    lines.append(f"With dbops: {code(restore)} · {code(f'/migrate force {v} {env}')} · "
                 f"{code(f'/migrate down 1 {env}')}")
    return "\n".join(lines)


def holder_line(holder: LockHolder | None, now: datetime) -> str:
    if holder is None or holder.pid == 0:
        return "a session that could not be identified (it may have just let go)"
    text = holder_text(holder)
    if holder.since and text.endswith(")"):  # "(…, since 16:18:00 UTC — 12 minutes ago)"
        text = f"{text[:-1]} — {age_text(now - holder.since)})"
    return esc(text) + (f"; its session is {esc(holder.state)}" if holder.state else "")


def lock_advice(holder: LockHolder | None) -> str:
    who = f"pid {holder.pid}" if holder is not None and holder.pid else "the holder"
    return ("Another migration (a deploy script's `migrate`, or another dbops) may be running. "
            "Wait for it to finish: two migrations must never run at once. "
            f"If nothing should be running, check who it is: {who} in `pg_stat_activity` on the database server.")


def mismatch_section(m: Mismatch) -> str:
    first, *rest = mismatch_text(m)
    return "\n".join([first.replace("Version mismatch:", "*Version mismatch:*", 1)] + [line.strip() for line in rest])


def problem_row(p: FileProblem) -> str:
    where = p.filename + (f":{p.line}" if p.line else "") + (f":{p.column}" if p.line and p.column else "")
    return f"{'*error*' if p.severity == 'error' else esc(p.severity)} {code(where)} {esc(shorten(p.message, 600))}"


def sql_error_block(error: SqlError, filename: str | None) -> str:
    short = dataclasses.replace(
        error, message=shorten(error.message, ERROR_CHARS),
        **{k: shorten(getattr(error, k), ERROR_CHARS // 3) for k in ("detail", "hint", "context", "dependency") if getattr(error, k)})
    return pre("\n".join(line.strip() for line in sql_error_lines(short, filename)))


# --- status ------------------------------------------------------------------------------------

def _pending_row(m: MigrationInfo) -> str:
    notes = [n for n, missing in (("no up file", not m.has_up), ("no down file", not m.has_down)) if missing]
    return code(f"{m.version}_{m.name}") + (f" _({', '.join(notes)})_" if notes else "")


def status(r: StatusResult, now: datetime) -> Message:
    lock = "free" if r.lock_holder is None else "held by " + holder_line(r.lock_holder, now)
    s = r.newest_snapshot
    newest = "none yet" if s is None else f"{code(s.name)}\n{age_text(now - s.created_at)}, {snapshot_version(s)}"
    # Option 1 of the recovery: the newest snapshot, if it was taken before the dirty version.
    before = s.name if s is not None and s.version is not None and s.version < r.state.version else None
    title = (f"{r.env}: DIRTY at {at_version(r.state.version)}" if r.state.dirty
             else f"{r.env}: {version_text(r.state)}")
    flags = [f"{len(r.pending):,} pending", "version mismatch" if r.mismatch else "",
             "migration lock held" if r.lock_holder else "", flag_headline(r.files)]
    card = Card(esc(title) + "".join(f"; {flag}" for flag in flags if flag)).header(title)
    card.fields([("Migrations", f"{len(r.applied):,} applied, {len(r.pending):,} pending"),
                 ("Migration lock", lock), ("Newest snapshot", newest)])
    if r.schema_version is not None:
        from bot.slack.blocks.schema_version import schema_version_text  # only when the version is in doubt
        card.section(schema_version_text(r.schema_version, r.state, r.env))
    if r.state.dirty and not (r.schema_version is not None and r.schema_version.recoverable):
        card.section(recovery_dirty(r.state, r.env, before))  # the guide's options: the schema did not say better
    if r.mismatch:
        card.section(mismatch_section(r.mismatch))
    if r.lock_holder:
        card.section(lock_advice(r.lock_holder))
    flag_section(card, r.files, r.env)
    if r.pending:
        card.lines([_pending_row(m) for m in r.pending[:PENDING_SHOWN]], total=len(r.pending),
                   title=f"*Pending ({len(r.pending):,}), in the order `up` applies them:*",
                   more=json_hint("migrate status", r.env))
    notes = []
    if r.missing_down:
        versions = ", ".join(str(v) for v in r.missing_down[:20]) + (" …" if len(r.missing_down) > 20 else "")
        notes.append(f"No down file for {versions}: rolling back through {'it' if len(r.missing_down) == 1 else 'them'} "
                     "changes nothing.")
    if r.skipped_files:
        names = ", ".join(code(f) for f in r.skipped_files[:10]) + (" …" if len(r.skipped_files) > 10 else "")
        notes.append(f"Skipped {count(len(r.skipped_files), 'file')} that golang-migrate also skips: {names}")
    return card.context(*notes).message()


# --- up, down, goto, force -----------------------------------------------------------------------

def _label(version: int, name: str) -> str:
    return f"{version}_{name}"


def _step_row(s: StepReport) -> str:
    file = code(s.filename) if s.filename else f"{code(_label(s.version, s.name))} _(no {s.direction} file: no-op)_"
    mode = f" _({esc(s.mode)})_" if s.mode != "transactional" else ""
    return f"{s.direction} {file}{mode} · {duration_text(s.duration_ms)}"


def _failure_headline(r: MigrateResult, f: StepFailure) -> str:
    what = f"migration {f.version}" if f.direction == "up" else f"rolling back migration {f.version}"
    if r.after.dirty:
        return f"{bold(r.env)}: {what} failed and left the database dirty at {at_version(r.after.version)}"
    return f"{bold(r.env)}: {what} failed; the database is clean at {at_version(r.after.version)}"


def _force(r: MigrateResult) -> Message:
    if r.outcome == Outcome.NO_CHANGE:
        headline = f"{bold(r.env)}: already at {version_text(r.after)}; nothing changed"
        return Card(plain(headline)).section(headline).message()
    if r.operation == "recover" and r.outcome is Outcome.FAILED:
        headline = (f"{bold(r.env)}: leftovers removed, but the schema is still not exactly the previous version: "
                    f"nothing was recorded; the database is at {version_text(r.after)}")
        card = Card(plain(headline)).section(headline).section(
            f"Something else changed the schema meanwhile. {code(f'/migrate status {r.env}')} says what it is now.")
    elif r.operation == "recover":
        headline = f"{bold(r.env)}: recovered from {version_text(r.before)} to {version_text(r.after)}"
        card = Card(plain(headline)).section(headline)
        card.section(f"The failed migration's leftovers were removed and the schema checked: it is exactly "
                     f"{at_version(r.after.version)}. Fix the file and run `/migrate up` again.")
    else:
        headline = f"{bold(r.env)}: forced from {version_text(r.before)} to {version_text(r.after)}"
        card = Card(plain(headline)).section(headline)
        card.section(f"No migration ran: the schema itself was not changed. It must match "
                     f"{at_version(r.after.version)} for the next `up` or `down` to be right.")
    return card.context(f"Snapshot taken first: {code(r.snapshot)}" if r.snapshot else "No snapshot was taken first "
                        "(pre-migration snapshots are off for this environment).").message()


def migrate(r: MigrateResult, command: str) -> Message:
    if r.operation in ("force", "recover"):
        return _force(r)
    if r.outcome == Outcome.NO_CHANGE:
        headline = f"{bold(r.env)}: no change; the database is already at {version_text(r.after)}"
        return Card(plain(headline)).section(headline).message()
    f = r.failure
    if f is None:
        direction = r.steps[0].direction if r.steps else r.operation
        headline = (f"{bold(r.env)}: migrated {esc(direction)} from {number(r.before.version)} to "
                    f"{number(r.after.version)}")
        if r.outcome == Outcome.FAILED:  # a file's record could not be written: the rest wait for it
            headline += ", then stopped: the record of the last file could not be written"
    else:
        headline = _failure_headline(r, f)
    card = Card(plain(headline)).section(headline)
    done = "reverted" if r.steps and r.steps[0].direction == "down" else "applied"
    card.fields([("Before", version_text(r.before)), ("After", version_text(r.after)),
                 ("Safety snapshot", code(r.snapshot) if r.snapshot else "none (off for this environment)"),
                 ("Took", f"{duration_text(r.duration_ms)}, {count(len(r.steps), 'migration')} {done}")])
    if f is not None:
        card.section(f"*What failed:* {esc(f.direction)} {code(f.filename or _label(f.version, f.name))}\n"
                     + sql_error_block(f.error, f.filename))
        if r.after.dirty and f.error.invalid_indexes:  # what it left is known: its own fix, not the general options
            from bot.slack.blocks.statements import invalid_indexes_text
            started_from = f.version if f.direction == "down" else (r.steps[-1].version if r.steps else r.before.version)
            card.section(invalid_indexes_text(f.error.invalid_indexes, env=r.env, version=f.version,
                                              previous=started_from))
            card.context(f"Or restore the snapshot taken before it: {code(f'/snapshot restore {r.snapshot} {r.env}')}"
                         if r.snapshot else f"Or restore a snapshot taken before it: {code(f'/snapshot list {r.env}')}")
        elif r.after.dirty:
            card.section(f"This file could not run in a transaction ({esc(f.mode)}), so it may be half applied.\n"
                         + recovery_dirty(r.after, r.env, r.snapshot))
        elif r.lock_wait is not None and f.error.sqlstate == LOCK_NOT_AVAILABLE:
            card.section(f"Another session holds a lock it needs. Each try was rolled back: the database is clean at "
                         f"{version_text(r.after)}. When the session in its way is done (or cancelled, or ended "
                         f"below), run {code(command)} again.")
        else:
            card.section(f"The failing file ran in one transaction with its version update, so none of it was kept: "
                         f"the database is at {version_text(r.after)}. Fix the file and run "
                         f"{code(command)} again.")
    if r.steps:
        card.lines([_step_row(s) for s in r.steps[:ROWS_SHOWN]], total=len(r.steps),
                   title=f"*{done.capitalize()}:*" if f is None else f"*{done.capitalize()} before the failure:*",
                   more=f"{count(len(r.steps), 'step')} in all")
    if r.lock_wait is not None:
        from bot.slack.blocks.lock_waits import blocked, waited  # only after a lock wait
        if f is not None and f.error.sqlstate == LOCK_NOT_AVAILABLE and r.lock_wait.blockers:
            return blocked(card, r)
        card.context(waited(r.lock_wait))
    return card.message()


# --- dry-run and validate ----------------------------------------------------------------------------

# A rollback undoes most, not all: people took "rolled back" to mean "nothing changed".
DRY_RUN_CAVEAT = ("It ran on the live database in one transaction, then rolled it back. Not undone: sequence "
                  "values it took (nextval, setval, serial or identity inserts) stay advanced. Statements that "
                  "cannot run in a transaction were not tried.")
_DRY_STATUS = {"ok": "passed", "partial": "*partly checked*", "failed": "*FAILED*", "skipped": "*not checked*",
               "not_run": "not run"}
UNCHECKED = ("partial", "skipped")  # statements in them that cannot run in a transaction were not run


def _dry_row(f: DryRunFile) -> str:
    row = (f"{_DRY_STATUS.get(f.status, esc(f.status))} {code(f.filename or _label(f.version, f.name))}"
           + (f" · {duration_text(f.duration_ms)}" if f.status in ("ok", "partial") else "")
           + (f" _({esc(f.note)})_" if f.note else ""))
    return row + ("\n" + sql_error_block(f.error, f.filename) if f.error else "")


def dry_run(r: DryRunResult) -> Message:
    if not r.files:
        headline = f"{bold(r.env)}: nothing pending at {version_text(r.state)}; nothing to try"
        return Card(plain(headline)).section(headline).message()
    failed = next((f for f in r.files if f.status == "failed"), None)
    unchecked = sum(f.status in UNCHECKED for f in r.files)
    if failed is not None:
        verdict = f"would fail at {code(failed.filename or _label(failed.version, failed.name))}"
    elif unchecked:
        # "would succeed" only for what ran: a CONCURRENTLY index that was never tried can still fail.
        verdict = (f"would succeed for the {len(r.files) - unchecked:,} it ran; {unchecked:,} not checked "
                   "(statements that cannot run in a transaction were not run)")
    else:
        verdict = "would succeed"
    headline = (f"{bold(r.env)}: dry run of {count(len(r.files), 'migration')} from "
                f"{version_text(r.state)} {verdict}")
    card = Card(plain(headline)).section(headline)
    card.context(DRY_RUN_CAVEAT)
    return card.lines([_dry_row(f) for f in r.files[:ROWS_SHOWN]], total=len(r.files),
                      more=json_hint("migrate dry-run", r.env)).message()


def validate(r: ValidateResult) -> Message:
    errors = sum(p.severity == "error" for p in r.problems)
    headline = (f"{bold(r.env)}: {count(r.files_checked, 'migration file')} checked: {count(errors, 'error')}, "
                f"{count(len(r.problems) - errors, 'warning')}")
    card = Card(plain(headline)).section(headline)
    ordered = sorted(r.problems, key=lambda p: p.severity != "error")  # errors first; stable otherwise
    card.lines([problem_row(p) for p in ordered[:ROWS_SHOWN]], total=len(ordered),
               more=json_hint("migrate validate", r.env))
    if errors:
        card.context("`/migrate up` refuses to run while a file it would apply does not parse.")
    return card.message()

