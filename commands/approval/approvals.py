"""The two-person rule: which operations need a second person, what a request is bound to,
and the rules an approval must pass.

A request is bound to a fingerprint of the exact operation and of the state it was requested
against: the recorded version and dirty flag, who holds the migration lock, the checksum of
the snapshot a restore would use (and whose it is), the snapshots a cleanup would delete, and
the lock directories' ``locked_at`` a lock release would remove. When the request
is approved the fingerprint is computed again from the live state; any difference voids it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from datetime import datetime
from typing import Any, Mapping

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.lock.lock_dirs import stamp as lock_dir_stamp
from commands.context import Context
from commands.identity import same_person, unmapped_account
from commands.migrations import EnvironmentDatabase
from commands.policy import Policy
from commands.approval.requirements import lint_gates, operation_of, rollback_equivalent
from commands.app.hooks import plan as hook_plan
from commands.app.results import HookPlan
from commands.approval.results import ApprovalRequest, Impact
from commands.lint.results import Finding, LossyStatement
from commands.migrate.results import MigrationInfo
from commands.preserve.results import LossEstimate, TableLoss
from commands.snapshot.results import RestoreEstimate
from commands.results import Reason, Refusal, State
from commands.sessions import Blocker
from commands.schema.compare import Change, Difference
from commands.snapshot.results import SnapshotInfo
from commands.snapshot.snapshot_scope import resolve, scope_of
from commands.snapshot.snapshots import read_manifest
from commands.source import load_source

# Bound to the files they run: a dry run too, since what it tries is what was approved.
MIGRATIONS: tuple[type, ...] = (g.MigrateUp, g.MigrateDown, g.MigrateGoto, g.MigrateDryRun)


def new_request_id() -> str:
    """Short enough to type (``/dbops approve r7k2m9qx``), long enough not to guess."""
    return "r" + secrets.token_hex(5)


# --- the bound state ------------------------------------------------------------------------

def situation(ctx: Context, command: g.Command, env: EnvironmentSettings) -> tuple[str, Impact]:
    """The fingerprint of ``command`` against the live state of ``env``, and its impact.

    A migration is bound to the content of the files it runs too, and an up's files are
    linted (their findings are on the impact)."""
    digest, impact = _situation(ctx, command, env)
    if isinstance(command, (g.Rollback, g.SnapshotRestore)):  # the approver sees that the application stops
        impact = dataclasses.replace(impact, app_hooks=hook_plan(env))
    return digest, impact


def _situation(ctx: Context, command: g.Command, env: EnvironmentSettings) -> tuple[str, Impact]:
    bound: dict[str, Any] = {"command": encode_command(command), "env": env.name}
    if isinstance(command, g.Rollback) and command.recover:
        return _recovery_situation(ctx, command, env, bound)
    if isinstance(command, g.Rollback):  # bound to the rollback, described by what it runs
        command = rollback_equivalent(command) or command
    with ctx.databases.open(env) as db:
        state = db.store.read()
        holder = db.lock.holder()
        if isinstance(command, MIGRATIONS):
            migration, bound["files"] = _migration_impact(ctx, db, command, env, state)
        blocker = db.blockers.session(command.pid) if isinstance(command, g.MigrateUnblock) else None
    bound |= {"version": state.version, "dirty": state.dirty, "lock_holder": holder.pid if holder else None}
    impact = Impact(before=state)
    match command:
        case g.MigrateUp() | g.MigrateDown() | g.MigrateGoto() | g.MigrateDryRun():
            impact = migration
        case g.MigrateForce(version=version) | g.MigrateBaseline(version=version):
            impact = Impact(before=state, target=version)
        case g.SnapshotRestore(name=name):
            snapshot = resolve(ctx.settings, env, name, "snapshot restore")
            if isinstance(snapshot, Refusal):  # no longer this environment's to restore: the request is void
                bound["snapshot"] = ["refused", snapshot.reason.value, snapshot.owner]
            else:
                owner = scope_of(ctx.settings, env).owner(snapshot)
                bound["snapshot"] = [owner, read_manifest(snapshot).get("sha256") if snapshot.kind == "dbops" else (
                    snapshot.name, snapshot.size, snapshot.written_ns)]
                from commands.snapshot.drill import estimate  # a restore's time: only restores read the drills
                from commands.preserve.preserve_ops import measure  # and what it would lose: only restores
                impact = Impact(before=state, snapshot=snapshot.info(),
                                restore_from=owner if owner != env.name else None,
                                restore_estimate=estimate(ctx, env, snapshot.size),
                                loss=measure(ctx, env, snapshot) if owner == env.name else None)
        case g.MigrateUnblock():  # bound to the session that has the pid: another one voids it
            bound["session"] = blocker.session_start if blocker else None
            impact = Impact(before=state, blocker=blocker)
        case g.DbopsLockRelease():  # bound to the holder (above) and to each lock directory's locked_at
            bound["lock_dirs"] = [[str(path), lock_dir_stamp(path)] for path in env.lock_dirs]
        case g.SnapshotCleanup(retention_days=days):
            from commands.snapshot.snapshot_ops import own_cleanup_plan  # the runners: loaded when a request is made
            _, plan = own_cleanup_plan(scope_of(ctx.settings, env), env, now=ctx.clock(),
                                       retention_days=env.retention_days if days is None else days,
                                       current_version=state.version)
            bound["deletes"] = [s.name for s in plan.delete]
            impact = Impact(before=state, deletes=tuple(s.info() for s in plan.delete),
                            delete_bytes=sum(s.size for s in plan.delete))
    digest = hashlib.sha256(json.dumps(bound, sort_keys=True, default=str).encode()).hexdigest()
    return digest, impact


def _recovery_situation(ctx: Context, command: g.Rollback, env: EnvironmentSettings,
                        bound: dict[str, Any]) -> tuple[str, Impact]:
    """A recovery is bound to the leftovers it would drop: others found by then void it."""
    from commands.schema.identify import recovery  # the schema reader: only for a recovery
    with ctx.databases.open(env) as db:
        state = db.store.read()
        holder = db.lock.holder()
        found = recovery(ctx, env, load_source(env.migrations_dir), state, db)
    drops = tuple(item.statement for item in found.leftovers) if found is not None and found.recoverable else ()
    target = found.previous if found is not None and found.recoverable else None
    bound |= {"version": state.version, "dirty": state.dirty, "lock_holder": holder.pid if holder else None,
              "target": target, "drops": list(drops)}
    digest = hashlib.sha256(json.dumps(bound, sort_keys=True, default=str).encode()).hexdigest()
    return digest, Impact(before=state, target=target, drops=drops)


def _migration_impact(ctx: Context, db: EnvironmentDatabase, command: g.Command, env: EnvironmentSettings,
                      state: State) -> tuple[Impact, list[list[str]]]:
    """The impact, and [filename, sha256] of each file the plan runs (a file edited after the
    request voids it)."""
    from commands.lint.lint_ops import lint_steps  # the runners: loaded when a request is made
    from commands.migrate.migrate_ops import _plan, read_sql
    source = load_source(env.migrations_dir)
    plan = _plan(command, source, state, env, operation_of(command) or "")
    if isinstance(plan, Refusal) or not plan:
        return Impact(before=state), []
    files = [[s.file.filename, hashlib.sha256(s.file.path.read_bytes()).hexdigest()] for s in plan if s.file]
    linted = lint_steps(ctx, db, env, plan) if any(s.direction == "up" for s in plan) else ()
    info = [MigrationInfo(version=s.migration.version, name=s.migration.name, has_up=s.migration.up is not None,
                          has_down=s.migration.down is not None) for s in plan]
    downs = [s for s in plan if s.direction == "down"]
    losses = []
    for step in downs:
        if step.file is None:
            continue
        for line, description in read_sql(step.file, ctx.parsed).data_loss:
            losses.append(LossyStatement(filename=step.file.filename, line=line, description=description))
    return Impact(before=state, target=plan[-1].target,
                  applies=tuple(i for i, s in zip(info, plan) if s.direction == "up"),
                  reverts=tuple(i for i, s in zip(info, plan) if s.direction == "down"),
                  data_loss=tuple(losses), missing_down=tuple(s.migration.version for s in downs if s.file is None),
                  findings=tuple(f for p in linted for f in p.findings),
                  block_severity=env.lint_block_severity if linted and lint_gates(command, env) else "none"), files


# --- the rules ------------------------------------------------------------------------------

def refuse_approval(request: ApprovalRequest, approver: str, env: EnvironmentSettings, policy: Policy,
                    cli_users: Mapping[str, str]) -> Reason | None:
    """Why ``approver`` may not answer ``request``, or None. Whoever asked never answers,
    whichever surface each came from (``cli_users`` says who a shell account is); a shell
    account with no Slack id never answers at all, whatever ``approvers`` lists. Expiry is not
    judged here: the control database decides it when the answer is recorded (``Approvals``)."""
    if request.state != "pending":
        return Reason.DECIDED
    if same_person(approver, request.requester, cli_users):
        return Reason.SELF_APPROVAL
    if unmapped_account(approver) is not None:
        return Reason.UNMAPPED_SHELL_USER
    if not policy.includes(env.approvers, approver):
        return Reason.NOT_APPROVER
    return None


# --- storage form -----------------------------------------------------------------------------

def encode_command(command: g.Command) -> dict:
    return {"type": type(command).__name__, "fields": dataclasses.asdict(command)}


def decode_command(data: dict) -> g.Command:
    kinds = {kind.__name__: kind for kind in g.COMMANDS}
    return kinds[data["type"]](**data["fields"])


def encode_impact(impact: Impact) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(impact), default=lambda v: v.isoformat()))


def decode_impact(data: dict) -> Impact:
    def snapshot(d: dict) -> SnapshotInfo:
        return SnapshotInfo(**{**d, "created_at": datetime.fromisoformat(d["created_at"])})
    return Impact(before=State(**data["before"]), target=data["target"],
                  applies=tuple(MigrationInfo(**m) for m in data["applies"]),
                  reverts=tuple(MigrationInfo(**m) for m in data["reverts"]),
                  data_loss=tuple(LossyStatement(**s) for s in data["data_loss"]),
                  missing_down=tuple(data["missing_down"]),
                  snapshot=snapshot(data["snapshot"]) if data["snapshot"] else None,
                  deletes=tuple(snapshot(s) for s in data["deletes"]), delete_bytes=data["delete_bytes"],
                  findings=tuple(Finding(**f) for f in data.get("findings", ())),
                  block_severity=data.get("block_severity", "none"),
                  restore_from=data.get("restore_from"),
                  schema_change=None if data.get("schema_change") is None else tuple(
                      Difference(**{**d, "change": Change(d["change"])}) for d in data["schema_change"]),
                  schema_unavailable=data.get("schema_unavailable"),
                  drops=tuple(data.get("drops", ())),
                  restore_estimate=_estimate(data.get("restore_estimate")),
                  app_hooks=HookPlan(**data["app_hooks"]) if data.get("app_hooks") else None,
                  blocker=_blocker(data.get("blocker")),
                  loss=_loss(data.get("loss")))


def _blocker(data: dict | None) -> Blocker | None:
    if data is None:
        return None
    times = {k: datetime.fromisoformat(data[k]) if data.get(k) else None
             for k in ("session_start", "xact_start", "state_since")}
    return Blocker(**{**data, **times})


def _loss(data: dict | None) -> LossEstimate | None:
    if data is None:
        return None
    tables = {key: tuple(TableLoss(**{**t, "columns": tuple(t["columns"])}) for t in data[key])
              for key in ("counted", "uncountable")}
    return LossEstimate(since=datetime.fromisoformat(data["since"]), untracked=tuple(data["untracked"]),
                        estimates_known=data["estimates_known"], **tables)


def _estimate(data: dict | None) -> RestoreEstimate | None:
    if data is None:
        return None
    at = data.get("drilled_at")
    return RestoreEstimate(**{**data, "drilled_at": datetime.fromisoformat(at) if at else None})
