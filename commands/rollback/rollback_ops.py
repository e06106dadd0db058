"""``/rollback``: the guide's rollback procedures as one guided flow.

With no target it plans: the current version and dirty flag, and the guide's methods ranked
for this state (each becomes an approval request when chosen). With a target and a reason it
runs the method through the ordinary operations, which take the lock and a safety snapshot
first, then reads the version back, checks every foreign key for orphaned rows and the
application's health check, and records why in the rollback log (and, if configured, in the
guide's deployment-state.json).
"""

from __future__ import annotations

import structlog

from commands import grammar as g
from commands.app.hooks import coordinated
from commands.approval.approvals import situation
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.rollback.deployment_state import record_last_rollback
from commands.errors import CommandError, UsageError
from commands.migrate.migrate_ops import force, migrate
from commands.rollback.results import AppHealthCheck, RollbackOption, RollbackPlan, RollbackResult
from commands.migrate.results import MigrateResult, MigrationInfo
from commands.results import Outcome, Refusal, State
from commands.snapshot.results import RestoreResult
from commands.kinds import Result
from commands.preserve.preserve_ops import restore
from commands.snapshot.snapshot_scope import scope_of
from commands.snapshot.snapshots import Snapshot
from commands.source import NIL_VERSION, load_source

log = structlog.get_logger("dbops.rollback")


def rollback(ctx: Context, command: g.Rollback, env: EnvironmentSettings) -> Result:
    return plan(ctx, command, env) if command.planning else execute(ctx, command, env)


# --- the plan ---------------------------------------------------------------------------------

def _before(snapshots: tuple[Snapshot, ...], version: int) -> Snapshot | None:
    """The newest snapshot taken before ``version`` was applied (its recorded version is lower)."""
    return next((s for s in snapshots if s.kind == "dbops" and s.version is not None and s.version < version), None)


def plan(ctx: Context, command: g.Rollback, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        state = db.store.read()
    if state.version == NIL_VERSION:
        return RollbackPlan(env=env.name, state=state, migration=None, options=())
    current = source.get(state.version)
    migration = None if current is None else MigrationInfo(version=current.version, name=current.name,
                                                             has_up=current.up is not None,
                                                             has_down=current.down is not None)
    snapshots = scope_of(ctx.settings, env).list().snapshots
    before = _before(snapshots, state.version)
    previous = source.previous(state.version)
    found = None
    if state.dirty:
        from commands.schema.identify import recovery  # the schema reader: only for a dirty database
        with ctx.databases.open(env) as db:
            found = recovery(ctx, env, source, state, db)
    recoverable = found is not None and found.recoverable
    restore_option = _restore_option(ctx, env, before, state,
                                     recommended=(state.dirty and not recoverable) or not (current and current.down))
    if state.dirty:
        options = [_recover_option(ctx, env, found)] if recoverable else []
        options += [restore_option,
                   _option(ctx, env, "force-previous", g.MigrateForce(version=previous),
                           recommended=False, warnings=(
                               f"Only if migration {state.version} changed nothing, or you have undone its changes by "
                               f"hand: this records version {'none' if previous == NIL_VERSION else previous} as clean and "
                               "runs no SQL. Then fix the file and run `/migrate up` again.",)),
                   _option(ctx, env, "force-down", g.Rollback(steps=1), recommended=False, warnings=(
                       f"Marks the half-applied {state.version} as applied, then runs its down file: a down file that "
                       "assumes the whole migration ran (no IF EXISTS) may fail half-way and leave it dirty again.",))]
    else:
        down = g.Rollback(steps=1)
        if current is not None and current.down is not None:
            options = [_option(ctx, env, "down", down, recommended=True), restore_option]
        else:
            options = [restore_option, RollbackOption(
                method="down", command=_text(down, env), recommended=False, available=False,
                why_not=f"version {state.version} has no down file: golang-migrate would only change the recorded "
                        "version and undo nothing")]
    return RollbackPlan(env=env.name, state=state, migration=migration, options=tuple(options), schema_version=found)


def _recover_option(ctx: Context, env: EnvironmentSettings, found) -> RollbackOption:
    option = _option(ctx, env, "recover", g.Rollback(recover=True), recommended=True)
    lost = (f"Loses nothing: what it drops holds no data, and every migration before {found.failed} and every write "
            "since stay." if found.leftovers else
            f"Loses nothing: migration {found.failed} left nothing behind, and every migration before it and every "
            "write since stay.")
    return RollbackOption(method=option.method, command=option.command, recommended=option.recommended,
                          available=option.available, why_not=option.why_not, impact=option.impact,
                          warnings=(lost,) + option.warnings)


def _text(command: g.Command, env: EnvironmentSettings) -> str:
    return "/" + g.canonical(command, env.name)


def _option(ctx: Context, env: EnvironmentSettings, method: str, command: g.Command, *, recommended: bool,
            warnings: tuple[str, ...] = ()) -> RollbackOption:
    try:
        _, impact = situation(ctx, command, env)
    except CommandError as err:
        return RollbackOption(method=method, command=_text(command, env), recommended=False, available=False,
                              why_not=err.message)
    lossy = tuple(f"{s.filename} line {s.line}: {s.description}" for s in impact.data_loss)
    return RollbackOption(method=method, command=_text(command, env), recommended=recommended, available=True,
                          impact=impact, warnings=warnings + lossy)


def _restore_option(ctx: Context, env: EnvironmentSettings, snapshot: Snapshot | None, state: State, *,
                    recommended: bool) -> RollbackOption:
    if snapshot is None:
        return RollbackOption(method="restore", command="/rollback --snapshot NAME", recommended=False, available=False,
                              why_not=f"no snapshot taken before version {state.version} is in the snapshot directory")
    option = _option(ctx, env, "restore", g.Rollback(snapshot=snapshot.name), recommended=recommended)
    written = f"Everything written since {snapshot.created_at:%Y-%m-%d %H:%M:%S} UTC is lost."
    return RollbackOption(method=option.method, command=option.command, recommended=option.recommended,
                          available=option.available, why_not=option.why_not, impact=option.impact,
                          warnings=(written,) + option.warnings)


# --- the execution ------------------------------------------------------------------------------

def execute(ctx: Context, command: g.Rollback, env: EnvironmentSettings) -> Result:
    with ctx.databases.open(env) as db:
        before = db.store.read()
    done, hooks = coordinated(ctx, env, "rollback", lambda inner: _method(inner, command, env, before),
                              failed=lambda done: done[1].outcome is Outcome.FAILED)
    if isinstance(done, Refusal):
        return done
    method, step, expected, dropped = done
    if isinstance(step, Refusal):
        return step
    snapshots = tuple(s for s in _snapshots_of(step) if s)
    with ctx.databases.open(env) as db:
        after = db.store.read()
        foreign_keys = db.inspector.foreign_key_orphans()
    health = hooks.health if hooks is not None and hooks.health is not None else _app_health(env)
    result = RollbackResult(
        env=env.name, method=method, reason=command.reason or "", requester=ctx.actor.user,
        approved_by=ctx.actor.approved_by, before=before, after=after, expected_version=expected, step=step,
        snapshots=snapshots, foreign_keys_checked=len(foreign_keys),
        orphans=tuple(o for o in foreign_keys if o.rows), app_health=health, recorded=False, deployment_state=None,
        dropped=dropped, app_hooks=hooks, outcome=_outcome(step, after, expected))
    return _record(ctx, env, result)


def _method(ctx: Context, command: g.Rollback, env: EnvironmentSettings,
            before: State) -> tuple[str, Result, int | None, tuple[str, ...]]:
    """Run the chosen method: (its name, what it returned, the version it should leave, the DROPs it ran)."""
    if command.recover:
        from commands.rollback.recover import recover  # the schema reader: only for a recovery
        step, dropped = recover(ctx, env)
        expected = step.after.version if isinstance(step, MigrateResult) and step.outcome is Outcome.DONE else None
        return "recover", step, expected, dropped
    return *_run(ctx, command, env, before), ()


def _run(ctx: Context, command: g.Rollback, env: EnvironmentSettings,
         before: State) -> tuple[str, Result, int | None]:
    if command.snapshot is not None:
        step = restore(ctx, g.SnapshotRestore(env=env.name, name=command.snapshot, preserve=command.preserve), env)
        version = step.after.version if isinstance(step, RestoreResult) else None
        return "restore", step, version
    if command.to is not None:
        if before.version != NIL_VERSION and command.to >= before.version:
            raise UsageError(f"--to {command.to} is not below the current version {before.version}: a rollback only "
                             "goes down. Use `/migrate goto` or `/migrate up` to go forward.")
        return "goto", migrate(ctx, g.MigrateGoto(env=env.name, version=command.to), env), command.to
    if before.dirty:
        if command.steps != 1:
            raise UsageError(f"The database is dirty at {before.version}: only --steps 1 (force {before.version}, then "
                             "its down file) or --snapshot NAME can roll it back.")
        forced = force(ctx, g.MigrateForce(env=env.name, version=before.version), env)
        if forced.outcome is not Outcome.DONE:
            return "force-down", forced, None
        step = migrate(ctx, g.MigrateDown(env=env.name, steps=1), env)
        return "force-down", step, step.after.version if isinstance(step, MigrateResult) and not step.failure else None
    step = migrate(ctx, g.MigrateDown(env=env.name, steps=command.steps), env)
    expected = step.after.version if isinstance(step, MigrateResult) and not step.failure else None
    return "down", step, expected


def _snapshots_of(step: Result) -> tuple[str | None, ...]:
    if isinstance(step, MigrateResult):
        return (step.snapshot,)
    if isinstance(step, RestoreResult):
        return (step.safety_snapshot,)
    return ()


def _outcome(step: Result, after: State, expected: int | None) -> Outcome:
    if step.outcome is Outcome.FAILED or after.dirty or (expected is not None and after.version != expected):
        return Outcome.FAILED
    return step.outcome


def _app_health(env: EnvironmentSettings) -> AppHealthCheck | None:
    if not env.health_url:
        return None
    # urllib and the TLS stack under it are loaded by the one command that checks: a rollback.
    from commands.app.health import check_app_health
    seen = check_app_health(env.health_url)
    passed = seen.reachable and seen.migrations_status == "pass"
    return AppHealthCheck(url=seen.url, passed=passed, message=seen.message, version=seen.migrations_version,
                          dirty=seen.migrations_dirty)


def _record(ctx: Context, env: EnvironmentSettings, result: RollbackResult) -> RollbackResult:
    recorded, state_file = False, None
    if ctx.rollback_log is not None:
        try:
            ctx.rollback_log.record(result)
            recorded = True
        except CommandError as err:
            log.error("rollback.record_failed", error=err.message)
    if env.deployment_state_file is not None:
        try:
            record_last_rollback(env.deployment_state_file, {
                "migration_version": result.before.version, "to_version": result.after.version,
                "reason": result.reason, "method": result.method, "requested_by": result.requester,
                "approved_by": result.approved_by}, at=ctx.clock())
            state_file = str(env.deployment_state_file)
        except CommandError as err:
            log.error("rollback.deployment_state_failed", error=err.message)
    log.info("rollback.done", method=result.method, before=result.before.version, after=result.after.version,
             orphans=sum(o.rows for o in result.orphans))
    return RollbackResult(**{**result.__dict__, "recorded": recorded, "deployment_state": state_file})
