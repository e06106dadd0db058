"""The approval operations: request, approve (and execute, exactly once), deny, cancel, list.

Approval and execution are one state machine in the control database (see
``control_migrations/3_approvals.up.sql``): approving moves a request from pending to
executing with a conditional update, so of any number of concurrent approvals one wins and
the others are told it was already decided. A request whose execution was cut off stays in
executing: it is never run a second time. Whether a request has expired is the control
database's decision, made by its clock in that same update (``Approvals``), so replicas
whose clocks disagree still agree on it.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from commands import grammar as g, privileges
from commands import grammar_words
from commands.approval.approvals import decode_command, encode_command, new_request_id, refuse_approval, situation
from commands.approval.requirements import OPERATIONS, needs_approval, operation_of, rollback_equivalent
from commands.config import EnvironmentSettings
from commands.identity import Actor
from commands.context import Context
from commands.errors import CommandError, ConfigError
from commands.identity import same_person, unmapped_account
from commands.approval.results import (ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalRequest,
                                       ApprovalsResult, Impact)
from commands.results import Outcome, Reason, Refusal
from commands.kinds import Result

log = structlog.get_logger("dbops.approvals")

# The requests whose card shows the schema change they make.
SCHEMA_CHANGES = (g.MigrateUp, g.MigrateDown, g.MigrateGoto)

__all__ = ["needs_approval", "request", "approve", "deny", "cancel", "approvals"]


def request(ctx: Context, command: g.Command, env: EnvironmentSettings,
            known: tuple[str, Impact] | None = None) -> Result:
    """A pending request for ``command``; ``known``: its ``situation``, when the caller has it.
    Refused when there is no control database to keep the request in, and nobody is asked to
    approve what the database role cannot do: that is refused first, by name."""
    if ctx.approvals_store is None:
        return Refusal(env=env.name, operation=grammar_words.command_name(command), reason=Reason.NO_APPROVALS)
    missing = _beyond_the_role(ctx, command, env)
    if missing is not None:
        return missing
    fingerprint, impact = known or situation(ctx, command, env)
    if isinstance(rollback_equivalent(command) if isinstance(command, g.Rollback) else command, SCHEMA_CHANGES):
        from commands.approval.schema_change import with_schema_change  # the scratch database: only for these
        impact = with_schema_change(ctx, env, impact)
    now = ctx.clock()  # only to state the time to live: the store sets both times by its own clock
    made = ApprovalRequest(id=new_request_id(), env=env.name, operation=operation_of(command) or "",
                           command=g.canonical(command, env.name), requester=ctx.actor.user,
                           channel=ctx.actor.channel, surface=ctx.actor.surface, fingerprint=fingerprint,
                           impact=impact, state="pending", created_at=now,
                           expires_at=now + timedelta(seconds=env.approval_ttl_seconds))
    stored = ctx.approvals.create(made, encode_command(command))
    log.info("approval.requested", request=stored.id, operation=stored.operation)
    return ApprovalNeeded(env=env.name, request=stored)


def _beyond_the_role(ctx: Context, command: g.Command, env: EnvironmentSettings) -> Refusal | None:
    """The MISSING_PRIVILEGE refusal of ``command`` when the catalogs already tell (the same
    judgement its runner makes again in its state-check step), else None."""
    if isinstance(command, g.Rollback):
        command = rollback_equivalent(command) or command
    match command:
        case g.MigrateUp() | g.MigrateDown() | g.MigrateGoto() | g.MigrateForce() | g.MigrateBaseline():
            return privileges.refusal(ctx, env, OPERATIONS[type(command)])
        case g.Rollback(recover=True):
            return privileges.refusal(ctx, env, "force")
        case g.SnapshotRestore():
            return privileges.refusal(ctx, env, privileges.RESTORE)
        case g.MigrateUnblock():
            from commands.migrate.unblock_ops import refusal  # only an unblock signals a session
            return refusal(ctx, command, env)
        case g.DbopsLockRelease():
            with ctx.databases.open(env) as db:
                holder = db.lock.holder()
            return privileges.refusal(ctx, env, privileges.LOCK_RELEASE, holder=holder)
    return None


def _find(ctx: Context, request_id: str) -> tuple[ApprovalRequest, dict, EnvironmentSettings] | ApprovalRefused:
    found = ctx.approvals.get(request_id)
    if found is None:
        return ApprovalRefused(env=None, request_id=request_id, reason=Reason.UNKNOWN_REQUEST)
    request_, args = found
    try:
        env = ctx.settings.environment(request_.env)
    except ConfigError:
        return ApprovalRefused(env=request_.env, request_id=request_id, reason=Reason.UNKNOWN_REQUEST,
                               request=request_, detail="its environment is no longer configured")
    if ctx.actor.channel is not None and ctx.actor.channel not in env.channels:
        return ApprovalRefused(env=env.name, request_id=request_id, reason=Reason.WRONG_CHANNEL, request=request_)
    return request_, args, env


def _refused(ctx: Context, pending: ApprovalRequest, env: EnvironmentSettings, why: Reason) -> ApprovalRefused:
    """The refusal; an unmapped shell user is told which account to map (``detail``)."""
    detail = unmapped_account(ctx.actor.user) if why is Reason.UNMAPPED_SHELL_USER else None
    return ApprovalRefused(env=env.name, request_id=pending.id, reason=why, request=pending, detail=detail)


def _not_answered(ctx: Context, pending: ApprovalRequest, env: EnvironmentSettings) -> ApprovalRefused:
    """Why an answer (approve, deny) did not move ``pending``: someone else moved it first, or
    by the control database's clock it had expired, which is then recorded (whoever notices
    first) and said."""
    latest = ctx.approvals.get(pending.id)
    current = latest[0] if latest else pending
    if current.state == "pending":  # still pending, yet the answer was refused: its time is up
        current = ctx.approvals.transition(pending.id, from_state="pending", to_state="expired") or current
    reason = Reason.EXPIRED if current.state in ("pending", "expired") else Reason.DECIDED
    return ApprovalRefused(env=env.name, request_id=pending.id, reason=reason, request=current)


def approve(ctx: Context, command: g.DbopsApprove, _env: None) -> Result:
    found = _find(ctx, command.request_id)
    if isinstance(found, ApprovalRefused):
        return found
    pending, args, env = found
    why = refuse_approval(pending, ctx.actor.user, env, ctx.policy, ctx.settings.cli_users)
    if why is not None:
        return _refused(ctx, pending, env, why)
    claimed = ctx.approvals.transition(pending.id, from_state="pending", to_state="executing", actor=ctx.actor.user)
    if claimed is None:  # another click, approver or replica got there first, or time ran out
        return _not_answered(ctx, pending, env)
    inner = decode_command(args)
    try:
        fingerprint, current = situation(ctx, inner, env)
    except CommandError as err:
        ctx.approvals.transition(claimed.id, from_state="executing", to_state="failed", outcome="error",
                                          reason=err.message)
        log.warning("approval.failed", request=claimed.id, error=err.message)
        raise
    if fingerprint != claimed.fingerprint:
        then = claimed.impact.before
        detail = (f"when it was requested the database was at {then.version}{' (dirty)' if then.dirty else ''}; "
                  f"now it is at {current.before.version}{' (dirty)' if current.before.dirty else ''}"
                  if then != current.before else "the lock holder or the snapshots changed since it was requested")
        void = ctx.approvals.transition(claimed.id, from_state="executing", to_state="void", reason=detail)
        log.warning("approval.void", request=claimed.id, detail=detail)
        return ApprovalRefused(env=env.name, request_id=claimed.id, reason=Reason.STATE_CHANGED,
                               request=void or claimed, detail=detail)
    requester = Actor(user=claimed.requester, channel=claimed.channel, surface=claimed.surface,
                      approved_by=ctx.actor.user)
    log.info("approval.executing", request=claimed.id, approver=ctx.actor.user)
    try:
        result = ctx.execute(inner, env, requester)
    except CommandError as err:
        ctx.approvals.transition(claimed.id, from_state="executing", to_state="failed", outcome="error",
                                 reason=err.message)
        raise
    final = "failed" if result.outcome in (Outcome.FAILED, Outcome.REFUSED) else "executed"
    done = ctx.approvals.transition(claimed.id, from_state="executing", to_state=final,
                                    outcome=result.outcome.value)
    return ApprovalDecided(env=env.name, request=done or claimed, result=result, outcome=result.outcome)


def deny(ctx: Context, command: g.DbopsDeny, _env: None) -> Result:
    found = _find(ctx, command.request_id)
    if isinstance(found, ApprovalRefused):
        return found
    pending, _, env = found
    why = refuse_approval(pending, ctx.actor.user, env, ctx.policy, ctx.settings.cli_users)
    if why is Reason.SELF_APPROVAL:
        why = Reason.NOT_APPROVER  # the requester withdraws with cancel, not deny
    if why is not None:
        return _refused(ctx, pending, env, why)
    denied = ctx.approvals.transition(pending.id, from_state="pending", to_state="denied", actor=ctx.actor.user,
                                      reason=command.reason)
    if denied is None:
        return _not_answered(ctx, pending, env)
    return ApprovalDecided(env=env.name, request=denied, outcome=Outcome.DONE)


def cancel(ctx: Context, command: g.DbopsCancel, _env: None) -> Result:
    found = _find(ctx, command.request_id)
    if isinstance(found, ApprovalRefused):
        return found
    pending, _, env = found
    if not same_person(ctx.actor.user, pending.requester, ctx.settings.cli_users):
        return ApprovalRefused(env=env.name, request_id=pending.id, reason=Reason.NOT_REQUESTER, request=pending)
    cancelled = ctx.approvals.transition(pending.id, from_state="pending", to_state="cancelled", actor=ctx.actor.user)
    if cancelled is None:
        latest = ctx.approvals.get(pending.id)
        return ApprovalRefused(env=env.name, request_id=pending.id, reason=Reason.DECIDED,
                               request=latest[0] if latest else pending)
    return ApprovalDecided(env=env.name, request=cancelled, outcome=Outcome.DONE)


def approvals(ctx: Context, command: g.DbopsApprovals, _env: None) -> Result:
    ctx.approvals.expire_due(command.env)  # recorded as expired by whoever looks first
    return ApprovalsResult(env=command.env, pending=tuple(ctx.approvals.pending(command.env)))
