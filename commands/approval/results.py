"""Approval requests, what a change would do (its impact), and the approval results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commands.app.results import HookPlan
from commands.lint.results import Finding, LossyStatement
from commands.migrate.results import MigrationInfo
from commands.preserve.results import LossEstimate
from commands.results import Outcome, Reason, ResultBase, State
from commands.sessions import Blocker
from commands.schema.compare import Difference
from commands.snapshot.results import RestoreEstimate, SnapshotInfo


@dataclass(frozen=True, kw_only=True)
class Impact:
    """What an operation will do, computed from the live state when it was requested."""

    before: State
    target: int | None = None                      # the version it leads to (migrations)
    applies: tuple[MigrationInfo, ...] = ()        # up (or goto upwards), in order
    reverts: tuple[MigrationInfo, ...] = ()        # down (or goto downwards), in order
    data_loss: tuple[LossyStatement, ...] = ()     # statements in the down files that lose data
    missing_down: tuple[int, ...] = ()             # reverted versions with no down file: nothing undone
    snapshot: SnapshotInfo | None = None           # restore: everything written since its created_at is lost
    deletes: tuple[SnapshotInfo, ...] = ()         # cleanup
    delete_bytes: int = 0
    findings: tuple[Finding, ...] = ()             # up: lint findings on the files it applies
    block_severity: str = "none"                   # up: findings at or above it (not allowed) made it a request
    restore_from: str | None = None                # restore: the other environment whose snapshot it is
    # up, down, goto: the expected schema of ``target`` against that of ``before.version``
    # (``+`` added, ``-`` removed); None when not computed, or when it could not be (then
    # ``schema_unavailable`` says why).
    schema_change: tuple[Difference, ...] | None = None
    schema_unavailable: str | None = None
    drops: tuple[str, ...] = ()                    # recover: the DROPs of a failed file's leftovers, as they run
    restore_estimate: RestoreEstimate | None = None  # restore: how long it should take
    app_hooks: HookPlan | None = None              # restore, rollback: the application's hooks called around it
    blocker: Blocker | None = None                 # unblock: the session it signals, as found
    loss: LossEstimate | None = None               # restore: the rows written since the snapshot (None: not measured)


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    """A request for a second person, as the control database holds it."""

    id: str
    env: str
    operation: str          # "down", "restore", …: the require_approval word
    command: str            # the words the requester typed, e.g. "migrate down 2"
    requester: str
    channel: str | None
    surface: str
    fingerprint: str
    impact: Impact
    state: str              # pending, executing, executed, failed, denied, cancelled, expired, void
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None   # the denial's reason, or why it was void
    message_ts: str | None = None
    outcome: str | None = None  # the execution's outcome


@dataclass(frozen=True, kw_only=True)
class ApprovalNeeded(ResultBase):
    """The operation needs a second person: a request was made and waits for them."""

    env: str
    request: ApprovalRequest
    outcome: Outcome = Outcome.AWAITING_APPROVAL
    operation: str = "approval request"


@dataclass(frozen=True, kw_only=True)
class ApprovalRefused(ResultBase):
    """Approve, deny or cancel refused; ``request`` None when there is no such request."""

    env: str | None
    request_id: str
    reason: Reason
    request: ApprovalRequest | None = None
    detail: str | None = None
    outcome: Outcome = Outcome.REFUSED
    operation: str = "approval"


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided(ResultBase):
    """A request approved and executed (``result``), denied or cancelled."""

    env: str
    request: ApprovalRequest
    result: "Result | None" = None  # a commands.kinds.Result, named only: kinds imports this module
    outcome: Outcome = Outcome.DONE
    operation: str = "approval"


@dataclass(frozen=True, kw_only=True)
class ApprovalsResult(ResultBase):
    env: str | None
    pending: tuple[ApprovalRequest, ...]
    outcome: Outcome = Outcome.DONE
    operation: str = "approvals"
