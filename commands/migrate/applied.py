"""The integrity of applied files: each file's checksum as dbops applied it, against the file now.

golang-migrate keeps one row, the current version; it cannot tell a file edited after it ran,
an applied file since deleted, or a file added below the current version (its ``up`` never
applies one). The control database's record of every file dbops applied can: ``check`` reads
it against the folder, and ``record`` writes it as each file commits.
"""

from __future__ import annotations

import hashlib
import time

from typing import TYPE_CHECKING

from commands.errors import CommandError, SourceError
from commands.results import AppliedFile, FileCheck, FileFlag, State
from commands.source import NIL_VERSION, MigrationFile, MigrationSource

if TYPE_CHECKING:  # annotations only: a status must not load the SQL reader (bench/cli_startup.py)
    from commands.config import EnvironmentSettings
    from commands.context import Context
    from commands.migrate.plans import Step
    from commands.sql.sqlfile import SqlFile

NO_CONTROL = "no control database is configured, so no file is recorded"


def sha256_of(file: MigrationFile) -> str:
    try:
        return hashlib.sha256(file.path.read_bytes()).hexdigest()
    except OSError as err:
        raise SourceError(f"Cannot read {file.filename}: {err.strerror}.") from None


def flags(source: MigrationSource, state: State, record: dict[int, AppliedFile]) -> FileCheck:
    """The applied files (at or below ``state.version``) against ``record``, each version's newest.

    Out of order: a file with no record of being applied, below the current version, whose
    version a recorded up went past (from a version below it to one above): that up ran every
    file between, so this one was not there then. Any other file without a record (applied
    before dbops recorded files, or by the migrate CLI) is only counted as unchecked."""
    if state.version == NIL_VERSION:
        return FileCheck()
    applied = {v: f for v, f in record.items() if f.direction == "up" and v <= state.version}
    spans = [(f.previous, v) for v, f in applied.items()]
    found: list[FileFlag] = []
    unchecked = 0
    for migration in source.migrations:
        v, up = migration.version, migration.up
        if v > state.version or up is None:
            continue
        recorded = applied.get(v)
        if recorded is not None:
            current = sha256_of(up)
            if current != recorded.sha256:
                found.append(FileFlag(problem="edited", version=v, filename=up.filename, current=state.version,
                                      recorded=recorded, sha256=current))
        elif v < state.version and any(previous < v < after for previous, after in spans):
            found.append(FileFlag(problem="out_of_order", version=v, filename=up.filename, current=state.version))
        else:
            unchecked += 1
    for v, recorded in sorted(applied.items()):
        migration = source.get(v)
        if migration is None or migration.up is None:
            found.append(FileFlag(problem="gone", version=v, filename=recorded.filename, current=state.version,
                                  recorded=recorded))
    return FileCheck(flags=tuple(sorted(found, key=lambda f: f.version)), unchecked=unchecked)


def check(ctx: Context, env: EnvironmentSettings, source: MigrationSource, state: State) -> FileCheck:
    """``flags`` from the control database's record; without one (none configured, or it cannot be
    read: a read-only command still answers), a FileCheck saying why, flagging nothing."""
    if state.version == NIL_VERSION:
        return FileCheck()
    if ctx.audit is None:
        return FileCheck(unrecorded=NO_CONTROL)
    try:
        record = ctx.audit.applied_files(env.name)
    except SourceError:
        raise
    except CommandError as err:
        return FileCheck(unrecorded=err.message)
    return flags(source, state, record)


def edited(ctx: Context, env: EnvironmentSettings, source: MigrationSource, state: State,
           plan: list[Step]) -> tuple[FileFlag, ...]:
    """The edited applied files an ``up`` (or a ``goto`` upwards) would build on; none when the
    environment allows them (``allow_edited_applied_files``) or there is no record."""
    if env.allow_edited_applied_files or ctx.audit is None or not plan or plan[0].direction != "up":
        return ()
    return tuple(f for f in flags(source, state, ctx.audit.applied_files(env.name)).flags if f.problem == "edited")


def record(ctx: Context, env: EnvironmentSettings, step: Step, sqlfile: SqlFile | None, operation: str,
           previous: int, started: float) -> str | None:
    """Record ``step``'s file as applied or reverted from version ``previous``, just after it
    committed: None when recorded (or there is nothing to record: no file, no control database),
    else why it could not be."""
    if ctx.audit is None or step.file is None or sqlfile is None:
        return None
    # The bytes that ran: read_sql decoded them as UTF-8, which encodes back to the same bytes.
    entry = AppliedFile(environment=env.name, version=step.migration.version, previous=previous,
                        name=step.migration.name,
                        filename=step.file.filename, direction=step.direction,
                        sha256=hashlib.sha256(sqlfile.text.encode("utf-8")).hexdigest(), actor=ctx.actor.user,
                        operation=operation, at=ctx.clock(), duration_ms=(time.perf_counter() - started) * 1000)
    try:
        ctx.audit.record_file(entry)
    except CommandError as err:
        return err.message
    return None
