"""The small phrases every renderer shares: versions, spans of time, ages, sizes, a lock's holder,
a SQL error's place. Plain text with no markup, so a Block Kit renderer may wrap them as it likes."""

from __future__ import annotations

from datetime import timedelta

from commands.snapshot.results import DiskUsage
from commands.results import LockHolder, Mismatch, SqlError, State
from commands.units import human_size, used_percent

TICKS = {True: "✅", False: "❌", None: "➖"}  # a checklist line: done, not done, neither (not applicable)


def span_text(span: timedelta) -> str:
    """A length of time in its largest whole unit: "15 minutes", "2 hours", "less than a minute"."""
    seconds = max(0, int(span.total_seconds()))
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            n = seconds // length
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def until_text(left: timedelta) -> str:
    """Time left before a deadline, to the nearest minute: a request that expires in 900 s is shown
    a moment after it was made, and "14 minutes" (rounded down) read as a wrong TTL."""
    seconds = left.total_seconds()
    return span_text(timedelta(minutes=round(seconds / 60)) if seconds >= 60 else left)


def age_text(age: timedelta) -> str:
    return "just now" if age.total_seconds() < 60 else f"{span_text(age)} ago"


def disk_text(disk: DiskUsage) -> str:
    if disk.store is not None:
        return f"snapshots {human_size(disk.snapshots_bytes)} in object storage ({disk.store})"
    # The percentage is df's Use%: blocks reserved for root are in the total but no snapshot gets them.
    return (f"snapshots {human_size(disk.snapshots_bytes)}; disk {used_percent(disk.used, disk.free)}% full: "
            f"{human_size(disk.used)} used, {human_size(disk.free)} free of {human_size(disk.total)}")


def number(version: int | None) -> str:
    """A version as a headline says it: 5, "no version" for golang-migrate's -1, "?" when unknown."""
    return "?" if version is None else ("no version" if version < 0 else str(version))


def at_version(version: int | None) -> str:
    """A version where a sentence names one: "version 5", or "no version" for golang-migrate's -1."""
    if version is None:
        return "an unknown version"
    return "no version" if version < 0 else f"version {version}"


def version_text(state: State) -> str:
    """The recorded state, whole: "version 5 (clean)", or "no version (nothing applied)"."""
    if state.version < 0:
        return "no version (nothing applied" + (", dirty)" if state.dirty else ")")
    return f"version {state.version} ({'dirty' if state.dirty else 'clean'})"


def holder_text(holder: LockHolder) -> str:
    app = holder.application_name or "unknown application"
    if holder.hidden:
        return f"pid {holder.pid} ({app}, user {holder.user or '?'}, from a client hidden from dbops' role)"
    since = f", since {holder.since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if holder.since else ""
    return f"pid {holder.pid} ({app}, user {holder.user or '?'}, from {holder.client}{since})"


RECOVERY_DIRTY = (
    "The database is dirty: a migration failed part-way and its changes may be half applied.",
    "Recovery options:",
    "  1. Restore the snapshot taken before the failed migration (recommended).",
    "  2. Fix the schema by hand to match version {v}, then `force {v}` and run `up` again.",
    "  3. `force {v}`, then `down 1` to undo it through its down file, fix the file, and run `up`.",
)


def mismatch_text(m: Mismatch) -> list[str]:
    if m.ahead:
        return [
            f"Version mismatch: the database is at {m.database_version}, but the newest migration file is "
            f"{m.latest_file_version}: the database has migrations this checkout does not have.",
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
                                                         ("context", error.context),
                                                         ("depends on", error.dependency)) if value]
    return lines
