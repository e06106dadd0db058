"""``/migrate plan``: the pending migrations, linted; and the lint an ``up`` request carries.

``lint_steps`` joins the files, the live table sizes, squawk (the Context's SqlLinter) and
``commands.lint.lint``'s rules, then lowers the live-data risks the database shows to be none
(``commands.lint.lint_live``: a table new in this run, absent or empty now); the plan and the approval gate (``commands.approval.approvals.situation``)
both call it, so a request is linted once, with the database session it already has open.
"""

from __future__ import annotations

from commands import grammar as g
from commands.lint.findings import blocks
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import SourceError
from commands.migrate import applied
from commands.migrate.migrate_ops import _plan, read_sql
from commands.migrations import EnvironmentDatabase
from commands.migrate.plans import Step
from commands.lint.results import Finding, PlanFile, PlanResult
from commands.results import Outcome, Refusal
from commands.kinds import Result
from commands.source import MigrationFile, load_source
from commands.sql.sqlfile import Mode, SqlFile

NOT_RUN = "squawk was not run: this dbops process has no SQL linter configured."


def _read(ctx: Context, file, filename: str, found: list[Finding]) -> SqlFile | None:
    try:
        return read_sql(file, ctx.parsed)
    except SourceError as err:
        found.append(Finding(rule="unreadable", severity="error", filename=filename, line=None, message=err.message))
        return None


def _squawk_excludes(env: EnvironmentSettings) -> tuple[str, ...]:
    """squawk's rules that dbops makes moot: it sets lock_timeout and statement_timeout itself."""
    return tuple(rule for rule, value in (("require-lock-timeout", env.lock_timeout),
                                          ("require-statement-timeout", env.statement_timeout))
                 if value.strip() not in ("0", "0ms", "0s"))


def _squawk(ctx: Context, env: EnvironmentSettings, files: list[tuple[MigrationFile, Mode]]) -> list[list[Finding]]:
    """squawk's findings on each of ``files``, all in one call (the linter runs them in batches)."""
    if ctx.linter is None:
        return [[Finding(rule="squawk-not-run", severity="info", filename=file.filename, line=None, message=NOT_RUN,
                         source="squawk")] for file, _ in files]
    return ctx.linter.lint([(file.path, mode is Mode.TRANSACTIONAL) for file, mode in files],
                           exclude=_squawk_excludes(env))


def lint_steps(ctx: Context, db: EnvironmentDatabase, env: EnvironmentSettings,
               steps: list[Step]) -> tuple[PlanFile, ...]:
    """Every up step of ``steps`` with its findings (allowances applied) and lock estimate."""
    from commands.lint import lint, lint_live  # the rules need PostgreSQL's parser: loaded by the commands that lint
    ups = [s for s in steps if s.direction == "up"]
    read: list[tuple[Step, SqlFile | None, SqlFile | None, list[Finding]]] = []
    for step in ups:
        found: list[Finding] = []
        up, down = step.migration.up, step.migration.down
        read.append((step, _read(ctx, up, up.filename, found) if up else None,
                     _read(ctx, down, down.filename, found) if down else None, found))
    wanted = sorted({t for _, up, _, _ in read if up is not None for t in lint.index_tables(up)})
    sizes = db.inspector.table_bytes(wanted) if wanted else {}
    modes = [up.mode if up is not None and not up.empty else Mode.TRANSACTIONAL for _, up, _, _ in read]
    lintable = [i for i, (_, up, _, _) in enumerate(read) if up is not None and up.syntax_error is None and not up.empty]
    squawk_of = dict(zip(lintable, _squawk(ctx, env, [(read[i][0].migration.up, modes[i]) for i in lintable]),
                         strict=True))
    for i, (step, up, down, found) in enumerate(read):
        m = step.migration
        found += lint.lint_migration(up_name=m.up.filename if m.up else None, up=up,
                                     down_name=m.down.filename if m.down else None, down=down, sizes=sizes,
                                     large_mb=env.lint_large_table_mb)
        found += squawk_of.get(i, [])
    live = db.inspector.live_objects(lint_live.touched(up for _, up, _, _ in read))
    judged = lint_live.judge([(step.migration.version, step.migration.up.filename if step.migration.up else None, up)
                              for step, up, _, _ in read], [found for *_, found in read], live)
    planned = []
    for i, ((step, up, down, _), found) in enumerate(zip(read, judged, strict=True)):
        m = step.migration
        in_files = {}
        for file, sqlfile in ((m.up, up), (m.down, down)):
            if file is not None and sqlfile is not None:
                allowed, problems = lint.allowances(file.filename, sqlfile.text)
                in_files[file.filename] = allowed
                found += problems
        findings = lint.accept(sorted(found, key=lambda f: (f.filename != (m.up.filename if m.up else ""),
                                                            f.filename, f.line or 0)),
                               in_files=in_files, configured=env.lint_allow)
        planned.append(PlanFile(version=m.version, name=m.name, filename=m.up.filename if m.up else None,
                                mode=modes[i].value, findings=findings,
                                locks=lint.lock_estimate(up) if up is not None else ()))
    return tuple(planned)


def blocking(files: tuple[PlanFile, ...] | tuple[Finding, ...], block_severity: str) -> list[Finding]:
    findings = [f for item in files for f in (item.findings if isinstance(item, PlanFile) else (item,))]
    return [f for f in findings if blocks(f, block_severity)]


def plan(ctx: Context, command: g.MigratePlan, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        state = db.store.read()
        steps = _plan(g.MigrateUp(env=env.name), source, state, env, "plan")
        if isinstance(steps, Refusal):
            return steps
        files = lint_steps(ctx, db, env, steps)
        wanted = list(dict.fromkeys((lk.table, lk.lock) for f in files for lk in f.locks))
        in_the_way = db.blockers.on_tables(wanted) if wanted else ()
    files_check = applied.check(ctx, env, source, state)
    stopped = blocking(files, env.lint_block_severity)
    outcome = Outcome.FAILED if stopped else (Outcome.DONE if files else Outcome.NO_CHANGE)
    return PlanResult(env=env.name, state=state, files=files, block_severity=env.lint_block_severity,
                      blocking=len(stopped), outcome=outcome, files_check=files_check, blockers=in_the_way)
