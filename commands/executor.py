"""The one executor every surface calls: ``Executor.run(command, actor) -> Result``.

It resolves the environment, binds the log context, asks the Policy whether this actor may
run this command here, hands the command to its runner
(``RUNNERS``: one per capability package, imported when first used), and records what happened
in the audit log, faults included. Every Command type must have a runner: a missing one fails at
start-up, not when a user first types it. Refusals come back as Result values; faults are
CommandError.

With the control database unreachable, what only reads still answers, its result saying
that its audit record could not be written (``audit_unwritten``); what changes state, and
the answers to approval requests, are refused before anything is done (CONTROL_UNREACHABLE):
they would run without their record, or cannot run without the control database at all.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

import structlog

from commands import grammar as g
from commands.approval.requirements import lint_gates, needs_approval
from commands.config import EnvironmentSettings, Settings
from commands.context import Context, ignore_progress, utc_now
from commands.errors import INSUFFICIENT_PRIVILEGE, CommandError, DatabaseUnreachable, UsageError, privilege_error
from commands.grammar_words import command_name
from commands.identity import Actor
from commands.migrations import Approvals, AuditLog, Databases, RollbackLog, Snapshotter, SqlLinter
from commands.observe import NOBODY, Observer
from commands.policy import Policy
from commands.redact import redact
from commands.results import AuditEntry, Progress, Reason, Refusal
from commands.snapshot import snapshot_scope

if TYPE_CHECKING:
    from commands.kinds import Result  # the union of every capability's results
    from commands.probes import Probe, SlackCheck  # the doctor's facts

log = structlog.get_logger("dbops.executor")

__all__ = ["Actor", "Executor"]

# Each command's runner as "module:function", imported when first run: a status from the shell
# loads the migration runner, not the snapshot, approval, rollback, lock and doctor ones.
RUNNERS: dict[type, str] = {
    g.MigrateStatus: "commands.schema.status_ops:status",
    g.MigrateValidate: "commands.migrate.migrate_ops:validate",
    g.MigratePlan: "commands.lint.lint_ops:plan",
    g.MigrateDrift: "commands.schema.drift_ops:drift",
    g.MigrateDryRun: "commands.migrate.migrate_ops:dry_run",
    g.MigrateUp: "commands.migrate.migrate_ops:migrate",
    g.MigrateDown: "commands.migrate.migrate_ops:migrate",
    g.MigrateGoto: "commands.migrate.migrate_ops:migrate",
    g.MigrateForce: "commands.migrate.migrate_ops:force",
    g.MigrateUnblock: "commands.migrate.unblock_ops:unblock",
    g.MigrateBaseline: "commands.schema.baseline_ops:baseline",
    g.SnapshotList: "commands.snapshot.snapshot_ops:list_",
    g.SnapshotCreate: "commands.snapshot.snapshot_ops:create",
    g.SnapshotVerify: "commands.snapshot.snapshot_ops:verify",
    g.SnapshotDrill: "commands.snapshot.drill:drill",
    g.SnapshotRestore: "commands.preserve.preserve_ops:restore",  # with --preserve, the rows kept around it
    g.SnapshotPreserved: "commands.preserve.preserve_ops:preserved",
    g.SnapshotReimport: "commands.preserve.preserve_ops:reimport",
    g.SnapshotPin: "commands.snapshot.snapshot_ops:pin",
    g.SnapshotCleanup: "commands.snapshot.snapshot_ops:cleanup",
    g.DbopsHistory: "commands.dbops_ops:history",
    g.DbopsHelp: "commands.dbops_ops:help_",
    g.DbopsApprovals: "commands.approval.approval_ops:approvals",
    g.DbopsApprove: "commands.approval.approval_ops:approve",
    g.DbopsDeny: "commands.approval.approval_ops:deny",
    g.DbopsCancel: "commands.approval.approval_ops:cancel",
    g.Rollback: "commands.rollback.rollback_ops:rollback",
    g.DbopsLockStatus: "commands.lock.lock_ops:status",
    g.DbopsLockRelease: "commands.lock.lock_ops:release",
    g.DbopsDoctor: "commands.doctor.doctor:run",
}


@functools.cache
def runner(command_type: type) -> Callable[..., Result]:
    """The runner of ``command_type`` (a KeyError for a type with none: the executor's start-up
    check makes sure every Command type has one)."""
    return _use(RUNNERS[command_type])


def _use(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


ANSWERS = (g.DbopsApprove, g.DbopsDeny, g.DbopsCancel)  # they move a request in the control database
AUDIT_UNREACHABLE = "control database unreachable"


class Executor:
    def __init__(self, settings: Settings, databases: Databases, snapshots: Snapshotter,
                 *, audit: AuditLog | None = None, policy: Policy | None = None,
                 approvals: Approvals | None = None, rollback_log: RollbackLog | None = None,
                 clock: Callable[[], datetime] = utc_now, linter: SqlLinter | None = None,
                 probe: Probe | None = None, slack: SlackCheck | None = None, observer: Observer = NOBODY) -> None:
        """``observer`` hears every run's outcome and duration, and the lock waits inside it."""
        missing = [c.__name__ for c in g.COMMANDS if c not in RUNNERS]
        if missing:
            raise RuntimeError(f"no runner for {', '.join(missing)}")
        self.settings = settings
        self.databases = databases
        self.snapshots = snapshots
        self.audit = audit
        self.policy = policy or Policy()
        self.approvals = approvals
        self.rollback_log = rollback_log
        self.clock = clock
        self.linter = linter
        self.probe = probe
        self.slack = slack
        self.observer = observer

    def run(self, command: g.Command, actor: Actor,
            progress: Callable[[Progress], None] = ignore_progress) -> Result:
        """Run ``command`` for ``actor``; ``progress`` hears each step of a long operation.

        The fixed order: environment → policy (and whether this environment may act on the
        snapshot it names) → approval (a request, when one is needed) → the operation's runner
        (lock → state check → snapshot → change → verify → unlock) → audit, whatever happened.
        """
        def go(env: EnvironmentSettings | None) -> Result:
            refusal = self.policy.check(command, actor, env, command_name(command)) if env else None
            refusal = refusal or self._control_refusal(command, env)
            if refusal is not None:
                return refusal
            context = self._context(actor, progress)
            if env is not None:
                source = snapshot_scope.restore_source(self.settings, command, env)
                if isinstance(source, Refusal):  # another environment's: refused, never a request
                    return source
                # An up is linted here, once: its findings may make it a request, and then
                # they go on the request as they are.
                known = None
                if lint_gates(command, env):  # the approval machinery, loaded only for an up
                    known = _use("commands.approval.approvals:situation")(context, command, env)
                if needs_approval(command, env, known[1] if known else None, source=source):
                    return _use("commands.approval.approval_ops:request")(context, command, env, known)
            if not isinstance(command, g.ABOUT_DBOPS):
                if env is not None:
                    _use("commands.migrate.migrate_ops:check_input")(context, command, env)
                context.step("start")  # allowed: a surface may now show the operation as running
            return runner(type(command))(context, command, env)
        return self._audited(command, actor, go)

    def run_scheduled(self, command: g.Command, actor: Actor) -> Result:
        """Run a command the configuration schedules (the cleanup on ``cleanup_schedule``) with
        no approval request: the configuration is its approval. Audited like any other."""
        def go(env: EnvironmentSettings | None) -> Result:
            context = self._context(actor, ignore_progress)
            context.step("start")
            return runner(type(command))(context, command, env)
        return self._audited(command, actor, go)

    def _run_approved(self, command: g.Command, env: EnvironmentSettings, requester: Actor,
                      progress: Callable[[Progress], None]) -> Result:
        """An approved command, run as its requester (its approval was checked by the caller)."""
        def go(env: EnvironmentSettings | None) -> Result:
            context = self._context(requester, progress)
            context.step("start")
            return runner(type(command))(context, command, env)
        return self._audited(command, requester, go, env=env)

    def _context(self, actor: Actor, progress: Callable[[Progress], None]) -> Context:
        return Context(settings=self.settings, databases=self.databases, snapshots=self.snapshots, actor=actor,
                       audit=self.audit, clock=self.clock, progress=progress, policy=self.policy,
                       approvals_store=self.approvals, rollback_log=self.rollback_log, linter=self.linter,
                       probe=self.probe, slack=self.slack, observer=self.observer,
                       execute=lambda command, env, requester: self._run_approved(command, env, requester, progress),
                       run=lambda command, who: self.run(command, who, progress))

    def _control_refusal(self, command: g.Command, env: EnvironmentSettings | None) -> Result | None:
        """The refusal of a command that needs the control database while it cannot be reached."""
        if self.audit is None or not (g.changes_state(command) or isinstance(command, ANSWERS)):
            return None
        try:
            self.audit.check()
        except DatabaseUnreachable as err:
            log.error("control.unreachable", error=err.message)
            if isinstance(command, ANSWERS):
                from commands.approval.results import ApprovalRefused
                return ApprovalRefused(env=None, request_id=command.request_id, reason=Reason.CONTROL_UNREACHABLE,
                                       detail=err.message)
            return Refusal(env=env.name, operation=command_name(command), reason=Reason.CONTROL_UNREACHABLE,
                           detail=err.message)
        return None

    def _audited(self, command: g.Command, actor: Actor, go: Callable[[EnvironmentSettings | None], Result],
                 env: EnvironmentSettings | None = None) -> Result:
        started, at = time.perf_counter(), self.clock()
        outcome, detail, result = "error", None, None
        structlog.contextvars.bind_contextvars(actor=actor.user, command=command_name(command))
        try:
            if env is None and (command.env is not None or getattr(type(command), "needs_environment", True)):
                env = self.resolve_environment(command.env, actor)
            if env is not None:
                structlog.contextvars.bind_contextvars(env=env.name)
            result = go(env)
            outcome = result.outcome.value
            if getattr(result, "app_hooks", None) is not None:  # a restore or rollback: for /dbops history
                from commands.app.hooks import said
                detail = said(result.app_hooks)
        except CommandError as err:
            detail = err.message
            raise
        except Exception as err:
            if getattr(err, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
                # PostgreSQL's refusal from wherever no layer named it: a fault to show, not a crash.
                fault = privilege_error(redact((str(err).strip().splitlines() or [type(err).__name__])[0]))
                detail = fault.message
                raise fault from None
            detail = f"internal error: {type(err).__name__}"
            raise
        finally:
            unwritten = None
            if getattr(result, "reason", None) is not Reason.CONTROL_UNREACHABLE:  # it just failed to connect
                unwritten = self._audit(command, actor, env, at, outcome, detail, started)
            # The resolved environment only: a name the user typed that is not configured is no label.
            self.observer.operation(command=command_name(command), environment=env.name if env else None,
                                    outcome=outcome, seconds=time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("env", "actor", "command")
        return result if unwritten is None else dataclasses.replace(result, audit_unwritten=unwritten)

    def _audit(self, command: g.Command, actor: Actor, env: EnvironmentSettings | None, at: datetime,
               outcome: str, detail: str | None, started: float) -> str | None:
        """Record the run; None when it was recorded (or there is no audit log), else why not."""
        if self.audit is None:
            return None
        arguments = {k: v for k, v in dataclasses.asdict(command).items() if k != "env"}
        entry = AuditEntry(at=at, actor=actor.user, channel=actor.channel, surface=actor.surface,
                           environment=env.name if env else command.env, command=command_name(command),
                           arguments=arguments, outcome=outcome, detail=redact(detail) if detail else None,
                           duration_ms=(time.perf_counter() - started) * 1000)
        try:
            self.audit.record(entry)
        except CommandError as err:
            # The command already ran; its result must still reach the user, saying so.
            log.error("audit.write_failed", error=err.message)
            return AUDIT_UNREACHABLE if isinstance(err, DatabaseUnreachable) else err.message
        return None

    def resolve_environment(self, name: str | None, actor: Actor) -> EnvironmentSettings:
        if name is not None:
            if name not in self.settings.environments:  # the user's typo, not a fault of the configuration
                raise UsageError(self.settings.unknown_environment(name))
            return self.settings.environment(name)
        candidates = list(self.settings.environments.values())
        mapped = [e for e in candidates if actor.channel is not None and actor.channel in e.channels]
        candidates = mapped or candidates  # a channel mapped to one environment names it
        if len(candidates) == 1:
            return candidates[0]
        names = ", ".join(sorted(e.name for e in candidates)) or ", ".join(sorted(self.settings.environments))
        raise UsageError(f"Which environment? Name one of: {names}.")
