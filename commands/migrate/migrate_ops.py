"""The migrate operations: status, validate, dry-run, up/down/goto and force.

Each is a function of the executor's Context, the parsed command and the environment; the
order of a state-changing one (lock → state check → snapshot → change → verify → unlock)
is written once, in ``_change``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from commands import grammar as g
from commands import grammar_words
from commands import privileges
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import CommandError, SourceError, UsageError
from commands.lock.migration_lock import migration_lock
from commands.migrate.applied import check as check_files, edited as edited_files, record as record_file
from commands.migrations import EnvironmentDatabase
from commands.migrate.plans import Step, plan_down, plan_goto, plan_up, require_version
from commands.migrate.results import (DryRunFile, DryRunResult, MigrateResult, MigrationInfo, StatusResult,
                                      StepFailure, StepReport, ValidateResult)
from commands.results import FileProblem, Mismatch, Outcome, Reason, Refusal, SqlError, State
from commands.snapshot.safety import safety_snapshot
from commands.snapshot.snapshot_scope import scope_of
from commands.source import NIL_VERSION, Migration, MigrationFile, MigrationSource, load_source

if TYPE_CHECKING:
    from commands.kinds import Result  # the union of every capability's results
    from commands.sql.sqlfile import SqlFile

log = structlog.get_logger("dbops.migrate")


def read_sql(file: MigrationFile, parsed: dict | None = None) -> SqlFile:
    """``file`` read and parsed. ``parsed``: a command's memo (``Context.parsed``), keyed by
    the file's identity and modification time, so a file edited in between is read again."""
    try:
        stat = file.path.stat()
        key = (str(file.path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if parsed is not None and key in parsed:
            return parsed[key]
        # The bytes as they are: reading in text mode turns \r\n and \r into \n, so a CR inside
        # a string literal would be stored as something else than golang-migrate stores.
        data = file.path.read_bytes()
    except OSError as err:
        raise SourceError(f"Cannot read {file.filename}: {err.strerror}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise SourceError(f"{file.filename} is not valid UTF-8 at line {line} (byte {err.start}).") from None
    del data  # a seed-data file's bytes need not stay in memory while it is parsed
    from commands.sql.sqlscan import scan  # the SQL reader: loaded by what reads SQL, not by a status
    sqlfile = scan(text)
    if parsed is not None:
        parsed[key] = sqlfile
    return sqlfile


def mismatch_of(source: MigrationSource, state: State) -> Mismatch | None:
    if state.version == NIL_VERSION or source.get(state.version) is not None:
        return None
    return Mismatch(database_version=state.version, latest_file_version=source.last_version,
                    ahead=state.version > source.last_version)


def _v(version: int) -> str:
    return "none" if version == NIL_VERSION else str(version)


def _info(m: Migration) -> MigrationInfo:
    return MigrationInfo(version=m.version, name=m.name, has_up=m.up is not None, has_down=m.down is not None)


def status(ctx: Context, command: g.MigrateStatus, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        state = db.store.read()
        holder = db.lock.holder()
    position = state.version
    applied = tuple(_info(m) for m in source.migrations if position != NIL_VERSION and m.version <= position)
    pending = tuple(_info(m) for m in source.migrations if position == NIL_VERSION or m.version > position)
    newest = scope_of(ctx.settings, env).list().snapshots[:1]
    return StatusResult(env=env.name, state=state, applied=applied, pending=pending,
                        mismatch=mismatch_of(source, state), newest_snapshot=newest[0].info() if newest else None,
                        missing_down=tuple(m.version for m in source.missing_down),
                        skipped_files=tuple(s.filename for s in source.skipped), lock_holder=holder,
                        files=check_files(ctx, env, source, state))



def validate(ctx: Context, command: g.MigrateValidate, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    problems: list[FileProblem] = [
        FileProblem(filename=s.filename, severity="warning", message=f"skipped: {s.reason}") for s in source.skipped
    ]
    checked = 0
    for migration in source.migrations:
        if migration.up is None:
            problems.append(FileProblem(filename=migration.down.filename, severity="warning",
                                        message="no up file: going up through this version changes nothing"))
        if migration.down is None:
            problems.append(FileProblem(filename=migration.up.filename, severity="warning",
                                        message="no down file: rolling back through this version changes nothing"))
        for file in (migration.up, migration.down):
            if file is None:
                continue
            checked += 1
            problems.extend(_file_problems(file))
    failed = any(p.severity == "error" for p in problems)
    return ValidateResult(env=env.name, files_checked=checked, problems=tuple(problems),
                          outcome=Outcome.FAILED if failed else Outcome.DONE)


def _file_problems(file: MigrationFile) -> list[FileProblem]:
    try:
        sqlfile = read_sql(file)
    except SourceError as err:
        return [FileProblem(filename=file.filename, severity="error", message=err.message)]
    problems = []
    if sqlfile.syntax_error is not None:
        problem = sqlfile.syntax_error
        problems.append(FileProblem(filename=file.filename, severity="error", message=problem.message,
                                    line=problem.position.line, column=problem.position.column))
    for line, reason in sqlfile.no_transaction_reasons:
        if len(sqlfile.statements) > 1:
            problems.append(FileProblem(
                filename=file.filename, severity="error", line=line,
                message=f"{reason} cannot run in a transaction block, and this file has other statements: "
                        "PostgreSQL runs a multi-statement file in one implicit transaction, so it will fail. "
                        "Put it in a file of its own."))
    return problems


def _plan(command: g.Command, source: MigrationSource, state: State, env: EnvironmentSettings,
          operation: str) -> list[Step] | Refusal:
    if state.dirty:
        return Refusal(env=env.name, operation=operation, reason=Reason.DIRTY, state=state)
    mismatch = mismatch_of(source, state)
    if mismatch is not None:
        return Refusal(env=env.name, operation=operation, reason=Reason.VERSION_MISMATCH, state=state,
                       mismatch=mismatch)
    match command:
        case g.MigrateUp(steps=steps) | g.MigrateDryRun(steps=steps):
            return plan_up(source, state.version, steps)
        case g.MigrateDown(steps=steps):
            return plan_down(source, state.version, steps)
        case g.MigrateGoto(version=version):
            return plan_goto(source, state.version, version)
    raise AssertionError(f"not a migration: {command!r}")


def check_input(ctx: Context, command: g.Command, env: EnvironmentSettings) -> None:
    """Raise the UsageError a migration would raise for its arguments (a version no file has,
    more steps than there are), before a surface shows it as started: a typo is answered to the
    person who made it, not announced in the channel. Read without the lock, so the run checks
    again; faults (a database that cannot be reached) are left for the run to report."""
    if not isinstance(command, (g.MigrateUp, g.MigrateDown, g.MigrateGoto, g.MigrateDryRun)):
        return
    try:
        source = load_source(env.migrations_dir)
        with ctx.databases.open(env) as db:
            state = db.store.read()
    except UsageError:
        raise
    except CommandError:
        return
    _plan(command, source, state, env, grammar_words.command_name(command))


def _read_steps(ctx: Context, steps: list[Step]) -> tuple[list[SqlFile | None], list[FileProblem]]:
    """Every file of the plan, parsed before anything runs, so a bad one changes nothing."""
    files, problems = [], []
    for step in steps:
        sqlfile = read_sql(step.file, ctx.parsed) if step.file is not None else None
        if sqlfile is not None and sqlfile.syntax_error is not None:
            problem = sqlfile.syntax_error
            problems.append(FileProblem(filename=step.file.filename, severity="error", message=problem.message,
                                        line=problem.position.line, column=problem.position.column))
        files.append(sqlfile)
    return files, problems


def migrate(ctx: Context, command: g.MigrateUp | g.MigrateDown | g.MigrateGoto, env: EnvironmentSettings) -> Result:
    operation = {g.MigrateUp: "up", g.MigrateDown: "down", g.MigrateGoto: "goto"}[type(command)]
    source = load_source(env.migrations_dir)
    with migration_lock(ctx, env, operation) as db:
        if isinstance(db, Refusal):
            return db
        return _change(ctx, db, env, command, source, operation)


def _change(ctx: Context, db: EnvironmentDatabase, env: EnvironmentSettings, command: g.Command,
            source: MigrationSource, operation: str) -> Result:
    started = time.perf_counter()
    missing = privileges.refusal(ctx, env, operation)  # before the version table is created, or anything else
    if missing is not None:
        return missing
    db.store.ensure()
    before = db.store.read()
    plan = _plan(command, source, before, env, operation)
    if isinstance(plan, Refusal):
        return plan
    if not plan:
        return MigrateResult(env=env.name, operation=operation, outcome=Outcome.NO_CHANGE, before=before, after=before)
    files, problems = _read_steps(ctx, plan)
    if problems:
        return Refusal(env=env.name, operation=operation, reason=Reason.SYNTAX_ERROR, state=before,
                       problems=tuple(problems))
    edited = edited_files(ctx, env, source, before, plan)
    if edited:
        return Refusal(env=env.name, operation=operation, reason=Reason.EDITED_APPLIED_FILE, state=before,
                       files=edited)
    # A down's or a goto's statements queue behind those sessions as an up's do, and the table's
    # other queries behind them: the same look first, before the snapshot and any SQL.
    from commands.migrate.blocker_check import check as blocker_check
    blocked = blocker_check(ctx, db, env, files, operation, before)
    if blocked is not None:
        return blocked
    snapshot = safety_snapshot(ctx, env, before, f"pre-migration v{_v(before.version)} to v{_v(plan[-1].target)}",
                               operation)
    reports: list[StepReport] = []
    failure: StepFailure | None = None
    unrecorded: str | None = None
    waited = None
    position = before.version
    from commands.migrate import lock_waits  # reads SQL files' modes: loaded by what changes a database
    for step, sqlfile in zip(plan, files):
        step_started = time.perf_counter()
        mode = sqlfile.mode.value if sqlfile is not None and not sqlfile.empty else "transactional"
        applying = step.file.filename if step.file else f"{step.migration.version} (no {step.direction} file)"
        ctx.step("apply", applying)
        filename = step.file.filename if step.file else None
        error, wait = lock_waits.apply(ctx, db, env, sqlfile, step.target, position, applying)
        waited = wait or waited
        if error is not None:
            failure = StepFailure(version=step.migration.version, name=step.migration.name,
                                  direction=step.direction, filename=filename, mode=mode, error=error)
            log.warning("migration.failed", version=step.migration.version, direction=step.direction,
                        sqlstate=error.sqlstate, line=error.line)
            break
        reports.append(StepReport(version=step.migration.version, name=step.migration.name,
                                  direction=step.direction, filename=filename, mode=mode,
                                  duration_ms=(time.perf_counter() - step_started) * 1000))
        log.info("migration.applied", version=step.migration.version, direction=step.direction, mode=mode)
        unrecorded = record_file(ctx, env, step, sqlfile, operation, position, step_started)
        position = step.target
        if unrecorded is not None:
            # Nothing changes a database without its record: the files after this one wait.
            log.error("migration.unrecorded", version=step.migration.version, error=unrecorded)
            unrecorded = f"{filename} ran, but {unrecorded}; the files after it were not run"
            break
    after = db.store.read()
    return MigrateResult(env=env.name, operation=operation,
                         outcome=Outcome.FAILED if failure or unrecorded else Outcome.DONE, before=before,
                         after=after, steps=tuple(reports), failure=failure, snapshot=snapshot,
                         duration_ms=(time.perf_counter() - started) * 1000, audit_unwritten=unrecorded,
                         lock_wait=waited)


def force(ctx: Context, command: g.MigrateForce, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    require_version(source, command.version, allow_nil=True)
    with migration_lock(ctx, env, "force") as db:
        if isinstance(db, Refusal):
            return db
        missing = privileges.refusal(ctx, env, "force")
        if missing is not None:
            return missing
        db.store.ensure()
        before = db.store.read()
        if before == State(version=command.version, dirty=False):
            return MigrateResult(env=env.name, operation="force", outcome=Outcome.NO_CHANGE, before=before,
                                 after=before)
        snapshot = safety_snapshot(ctx, env, before, f"pre-force v{_v(before.version)} to v{_v(command.version)}",
                                   "force")
        db.store.write(command.version, False)
        after = db.store.read()
    log.info("migration.forced", version=command.version, before=before.version, was_dirty=before.dirty)
    return MigrateResult(env=env.name, operation="force", outcome=Outcome.DONE, before=before, after=after,
                         snapshot=snapshot)


def dry_run(ctx: Context, command: g.MigrateDryRun, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with migration_lock(ctx, env, "dry-run") as db:
        if isinstance(db, Refusal):
            return db
        state = db.store.read()
        plan = _plan(command, source, state, env, "dry-run")
        if isinstance(plan, Refusal):
            return plan
        files, problems = _read_steps(ctx, plan)
        rows = [] if problems else db.runner.dry_run([(s.migration.label, f) for s, f in zip(plan, files)])
    by_label = {label: row for label, *row in rows}
    syntax = {p.filename: p for p in problems}
    reports = []
    for step in plan:
        filename = step.file.filename if step.file else None
        if filename in syntax:
            p = syntax[filename]
            status, note, ms = "failed", "syntax error found by the parser", 0.0
            error = SqlError(message=p.message, sqlstate="42601", line=p.line, column=p.column)
        elif problems:
            status, note, error, ms = "not_run", "another file has a syntax error", None, 0.0
        else:
            status, note, error, ms = by_label[step.migration.label]
        reports.append(DryRunFile(version=step.migration.version, name=step.migration.name, filename=filename,
                                  status=status, note=note, error=error, duration_ms=ms))
    failed = any(r.status == "failed" for r in reports)
    outcome = Outcome.FAILED if failed else (Outcome.DONE if reports else Outcome.NO_CHANGE)
    return DryRunResult(env=env.name, state=state, files=tuple(reports), outcome=outcome)
