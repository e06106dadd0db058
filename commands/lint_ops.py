"""``/migrate plan``: the pending migrations, linted; and the lint an ``up`` request carries.

``lint_steps`` joins the files, the live table sizes, squawk (the Context's SqlLinter) and
``commands.lint``'s rules; the plan and the approval gate (``commands.approvals.situation``)
both call it, so a request is linted once, with the database session it already has open.
"""

from __future__ import annotations

from commands import grammar as g
from commands import lint
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import SourceError
from commands.migrate_ops import _plan, read_sql
from commands.migrations import EnvironmentDatabase
from commands.plans import Step
from commands.results import Finding, Outcome, PlanFile, PlanResult, Refusal, Result
from commands.source import load_source
from commands.sqlscan import Mode, SqlFile

NOT_RUN = "squawk was not run: this dbops process has no SQL linter configured."


def _read(file, filename: str, found: list[Finding]) -> SqlFile | None:
    try:
        return read_sql(file)
    except SourceError as err:
        found.append(Finding(rule="unreadable", severity="error", filename=filename, line=None, message=err.message))
        return None


def _squawk_excludes(env: EnvironmentSettings) -> tuple[str, ...]:
    """squawk's rules that dbops makes moot: it sets lock_timeout and statement_timeout itself."""
    return tuple(rule for rule, value in (("require-lock-timeout", env.lock_timeout),
                                          ("require-statement-timeout", env.statement_timeout))
                 if value.strip() not in ("0", "0ms", "0s"))


def lint_steps(ctx: Context, db: EnvironmentDatabase, env: EnvironmentSettings,
               steps: list[Step]) -> tuple[PlanFile, ...]:
    """Every up step of ``steps`` with its findings (allowances applied) and lock estimate."""
    ups = [s for s in steps if s.direction == "up"]
    read: list[tuple[Step, SqlFile | None, SqlFile | None, list[Finding]]] = []
    for step in ups:
        found: list[Finding] = []
        up, down = step.migration.up, step.migration.down
        read.append((step, _read(up, up.filename, found) if up else None,
                     _read(down, down.filename, found) if down else None, found))
    wanted = sorted({t for _, up, _, _ in read if up is not None for t in lint.index_tables(up.text)})
    sizes = db.inspector.table_bytes(wanted) if wanted else {}
    planned = []
    for step, up, down, found in read:
        m = step.migration
        found += lint.lint_migration(up_name=m.up.filename if m.up else None, up=up,
                                     down_name=m.down.filename if m.down else None, down=down, sizes=sizes,
                                     large_mb=env.lint_large_table_mb)
        mode = up.mode if up is not None and not up.empty else Mode.TRANSACTIONAL
        if up is not None and up.syntax_error is None and not up.empty:
            found += (ctx.linter.lint(m.up.path, in_transaction=mode is Mode.TRANSACTIONAL,
                                      exclude=_squawk_excludes(env)) if ctx.linter is not None else
                      [Finding(rule="squawk-not-run", severity="info", filename=m.up.filename, line=None,
                               message=NOT_RUN, source="squawk")])
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
                                mode=mode.value, findings=findings,
                                locks=lint.lock_estimate(up.text) if up is not None else ()))
    return tuple(planned)


def blocking(files: tuple[PlanFile, ...] | tuple[Finding, ...], block_severity: str) -> list[Finding]:
    findings = [f for item in files for f in (item.findings if isinstance(item, PlanFile) else (item,))]
    return [f for f in findings if lint.blocks(f, block_severity)]


def plan(ctx: Context, command: g.MigratePlan, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        state = db.store.read()
        steps = _plan(g.MigrateUp(env=env.name), source, state, env, "plan")
        if isinstance(steps, Refusal):
            return steps
        files = lint_steps(ctx, db, env, steps)
    stopped = blocking(files, env.lint_block_severity)
    outcome = Outcome.FAILED if stopped else (Outcome.DONE if files else Outcome.NO_CHANGE)
    return PlanResult(env=env.name, state=state, files=files, block_severity=env.lint_block_severity,
                      blocking=len(stopped), outcome=outcome)
