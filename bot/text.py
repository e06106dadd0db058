"""Plain-text rendering of Results for terminals: all the CLI's wording lives here."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

from commands.results import (
    DryRunResult, LockHolder, MigrateResult, Mismatch, Reason, Refusal, Result, SqlError, State, StatusResult,
    ValidateResult,
)


def version_text(state: State) -> str:
    if state.version == -1:
        return "no version (nothing applied)" + (" (dirty)" if state.dirty else "")
    return f"{state.version} ({'dirty' if state.dirty else 'clean'})"


def holder_text(holder: LockHolder) -> str:
    since = f", since {holder.since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if holder.since else ""
    app = holder.application_name or "unknown application"
    return f"pid {holder.pid} ({app}, user {holder.user or '?'}, from {holder.client}{since})"


RECOVERY_DIRTY = (
    "The database is dirty: a migration failed part-way and its changes may be half applied.",
    "Recovery options (the troubleshooting guide, Issue 2):",
    "  1. Restore the snapshot taken before the failed migration (recommended).",
    "  2. Fix the schema by hand to match version {v}, then `force {v}` and run `up` again.",
    "  3. `force {v}`, then `down 1` to undo it through its down file, fix the file, and run `up`.",
)


def mismatch_text(m: Mismatch) -> list[str]:
    if m.ahead:
        return [
            f"Version mismatch: the database is at {m.database_version}, but the newest migration file is "
            f"{m.latest_file_version}: the database has migrations this checkout does not have (the guide's Issue 4).",
            "  Either check out the code that has those migrations, or roll the database back with the files that have them.",
        ]
    return [
        f"Version mismatch: the database is at {m.database_version}, which no migration file has "
        "(a file was renamed or removed after it was applied).",
        "  Restore the missing file, or `force` the version that matches the schema.",
    ]


def sql_error_lines(error: SqlError, filename: str | None) -> list[str]:
    where = filename or "(no file)"
    if error.line is not None:
        where += f", line {error.line}" + (f", column {error.column}" if error.column else "")
    lines = [f"  {where}: {error.message}" + (f" [SQLSTATE {error.sqlstate}]" if error.sqlstate else "")]
    lines += [f"  {label}: {value}" for label, value in (("detail", error.detail), ("hint", error.hint),
                                                         ("context", error.context)) if value]
    return lines


def _status(r: StatusResult) -> list[str]:
    lines = [f"Environment {r.env}: version {version_text(r.state)}"]
    lines.append(f"Applied: {len(r.applied)}   Pending: {len(r.pending)}")
    for m in r.pending[:20]:
        lines.append(f"  pending  {m.version}_{m.name}" + ("" if m.has_down else "   (no down file)"))
    if len(r.pending) > 20:
        lines.append(f"  … and {len(r.pending) - 20} more pending")
    if r.state.dirty:
        lines += [line.format(v=r.state.version) for line in RECOVERY_DIRTY]
    if r.mismatch:
        lines += mismatch_text(r.mismatch)
    if r.missing_down:
        shown = ", ".join(str(v) for v in r.missing_down[:10]) + (" …" if len(r.missing_down) > 10 else "")
        lines.append(f"No down file (rollback through these is a no-op): {shown}")
    if r.skipped_files:
        lines.append(f"Skipped files (not migrations): {len(r.skipped_files)}")
    if r.lock_holder:
        lines.append(f"Migration lock held by {holder_text(r.lock_holder)}")
    return lines


def _refusal(r: Refusal) -> list[str]:
    head = f"Refused: {r.operation} on {r.env}"
    match r.reason:
        case Reason.LOCK_HELD:
            return [f"{head}: the migration lock is held by {holder_text(r.holder)}.",
                    "Another migration (a deploy script's `migrate`, or another dbops) is running. Nothing was changed.",
                    "Wait for it to finish; never run two migrations at once (the guide's Issue 5)."]
        case Reason.DIRTY:
            return [f"{head}: the database is at version {version_text(r.state)}. Nothing was changed."] + \
                   [line.format(v=r.state.version) for line in RECOVERY_DIRTY]
        case Reason.VERSION_MISMATCH:
            return [f"{head}. Nothing was changed."] + mismatch_text(r.mismatch)
        case Reason.SYNTAX_ERROR:
            return [f"{head}: a migration file does not parse, so nothing was run."] + [
                f"  {p.filename}, line {p.line}, column {p.column}: {p.message}" for p in r.problems]
    return [f"{head}: {r.reason.value}"]


def _migrate(r: MigrateResult) -> list[str]:
    if r.operation == "force":
        if r.outcome.value == "no_change":
            return [f"{r.env}: already at version {version_text(r.after)}; nothing changed."]
        return [f"{r.env}: version forced from {version_text(r.before)} to {version_text(r.after)}.",
                "No migration ran: the schema itself was not changed."]
    if r.outcome.value == "no_change":
        return [f"{r.env}: no change; the database is at version {version_text(r.after)}."]
    lines = []
    for s in r.steps:
        lines.append(f"  {s.direction:<4} {s.version}_{s.name}  {s.duration_ms:.0f} ms"
                     + ("  (no file: no-op)" if s.filename is None else "")
                     + (f"  [{s.mode}]" if s.mode != "transactional" else ""))
    if r.failure is None:
        return [f"{r.env}: {r.operation} done, {len(r.steps)} migration(s) in {r.duration_ms:.0f} ms; "
                f"now at version {version_text(r.after)}."] + lines
    f = r.failure
    lines = [f"{r.env}: {r.operation} FAILED at {f.version}_{f.name} ({f.direction}); "
             f"now at version {version_text(r.after)}."] + lines
    lines.append(f"  FAILED {f.direction} {f.version}_{f.name}:")
    lines += sql_error_lines(f.error, f.filename)
    if r.after.dirty:
        lines.append(f"This file could not run in a transaction ({f.mode}), so it may be half applied.")
        lines += [line.format(v=r.after.version) for line in RECOVERY_DIRTY]
    else:
        lines.append(f"The failing file was rolled back with its transaction: the database is clean at "
                     f"{version_text(r.after)}. Fix the file and run `up` again.")
    return lines


def _dry_run(r: DryRunResult) -> list[str]:
    if not r.files:
        return [f"{r.env}: nothing pending at version {version_text(r.state)}; nothing to try."]
    verdict = "would FAIL" if r.outcome.value == "failed" else "would succeed"
    lines = [f"{r.env}: dry run of {len(r.files)} migration(s) from version {version_text(r.state)}: {verdict}. "
             "Everything was rolled back."]
    for f in r.files:
        lines.append(f"  {f.status:<7} {f.version}_{f.name}" + (f"  ({f.note})" if f.note else ""))
        if f.error:
            lines += ["  " + line for line in sql_error_lines(f.error, f.filename)]
    return lines


def _validate(r: ValidateResult) -> list[str]:
    errors = [p for p in r.problems if p.severity == "error"]
    lines = [f"{r.env}: {r.files_checked} migration file(s) checked: {len(errors)} error(s), "
             f"{len(r.problems) - len(errors)} warning(s)."]
    for p in r.problems:
        where = p.filename + (f", line {p.line}" if p.line else "") + (f", column {p.column}" if p.column else "")
        lines.append(f"  {p.severity:<7} {where}: {p.message}")
    return lines


def render_text(result: Result) -> str:
    match result:
        case StatusResult():
            lines = _status(result)
        case Refusal():
            lines = _refusal(result)
        case MigrateResult():
            lines = _migrate(result)
        case DryRunResult():
            lines = _dry_run(result)
        case ValidateResult():
            lines = _validate(result)
        case _:
            raise TypeError(f"no text renderer for {type(result).__name__}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {"kind": type(value).__name__, **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render_json(result: Result) -> str:
    return json.dumps(_plain(result), indent=2, sort_keys=False)
