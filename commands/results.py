"""Results: plain, frozen data that every surface renders in its own words.

A Result says what happened (``outcome``) and carries the facts a renderer needs; it never
holds wording. Refusals are Results too, with a ``reason`` code the renderers know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Outcome(str, Enum):
    DONE = "done"
    NO_CHANGE = "no_change"
    REFUSED = "refused"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"


class Reason(str, Enum):
    """Why an operation was refused; each has its wording and recovery advice per surface."""

    LOCK_HELD = "lock_held"
    DIRTY = "dirty"
    VERSION_MISMATCH = "version_mismatch"
    SYNTAX_ERROR = "syntax_error"
    SNAPSHOT_DAMAGED = "snapshot_damaged"
    NO_SNAPSHOT_DIR = "no_snapshot_dir"
    SELF_APPROVAL = "self_approval"  # the requester pressed Approve on their own request
    NOT_APPROVER = "not_approver"    # someone not in ``approvers`` pressed Approve
    UNMAPPED_SHELL_USER = "unmapped_shell_user"  # a shell account [cli] users does not map approved or denied
    EXPIRED = "expired"              # the request outlived approval_ttl_seconds
    DECIDED = "decided"              # already approved, denied, cancelled or executed
    STATE_CHANGED = "state_changed"  # the database is not as it was when the request was made
    NOT_REQUESTER = "not_requester"  # only the requester may cancel
    UNKNOWN_REQUEST = "unknown_request"
    WRONG_CHANNEL = "wrong_channel"  # the environment does not take commands from this channel
    NOT_OPERATOR = "not_operator"    # a state-changing command from someone not in ``operators``
    OTHER_ENVIRONMENT = "other_environment"    # the named snapshot is another environment's (``owner``)
    UNCLAIMED_SNAPSHOT = "unclaimed_snapshot"  # a legacy snapshot no single environment answers to
    MANIFEST_MISMATCH = "manifest_mismatch"    # the name says ``owner``; the manifest does not agree
    CONTROL_UNREACHABLE = "control_unreachable"  # it needs the control database, which cannot be reached
    MISSING_PRIVILEGE = "missing_privilege"    # the database role lacks what the operation needs (``shortfall``)
    NO_APPROVALS = "no_approvals"  # it needs a second person, and no control database can hold the request


@dataclass(frozen=True, kw_only=True)
class ResultBase:
    """What every Result carries besides its own facts."""

    # Why this run's audit record could not be written ("control database unreachable", or the
    # fault's message); None when it was written, or when no audit log is configured.
    audit_unwritten: str | None = None


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Where a long operation is, for surfaces that show it while it runs.

    ``step``: "start" (the policy allowed it; nothing done yet), "lock" (waiting for the migration lock), "snapshot" (with bytes of the database
    read, written and its size), "verify", "apply" (``detail``: the file), "restore", "read-back".
    """

    step: str
    detail: str | None = None
    read_bytes: int | None = None
    written_bytes: int | None = None
    total_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class State:
    """schema_migrations as golang-migrate reads it; version -1 means no row (nothing applied)."""

    version: int
    dirty: bool


@dataclass(frozen=True, kw_only=True)
class LockHolder:
    pid: int
    application_name: str
    client: str          # address or "local socket"
    user: str
    since: datetime | None
    state: str | None
    state_since: datetime | None = None  # when its session entered ``state`` (idle since, active since)
    # Another role's session, whose state, client and start PostgreSQL shows only to members of
    # pg_read_all_stats: those fields are unknown, not empty.
    hidden: bool = False
    own: bool = True  # a session of dbops' own role (or one it is a member of): it may end it


@dataclass(frozen=True, kw_only=True)
class MigrationInfo:
    version: int
    name: str
    has_up: bool
    has_down: bool


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    """The database is at a version the files do not have (the guide's Issue 4)."""

    database_version: int
    latest_file_version: int
    ahead: bool  # True: the database is past every file; False: a version missing in between


@dataclass(frozen=True, kw_only=True)
class StatusResult(ResultBase):
    env: str
    state: State
    applied: tuple[MigrationInfo, ...]
    pending: tuple[MigrationInfo, ...]
    mismatch: Mismatch | None
    missing_down: tuple[int, ...]
    skipped_files: tuple[str, ...]
    lock_holder: LockHolder | None
    newest_snapshot: SnapshotInfo | None = None
    outcome: Outcome = Outcome.DONE
    operation: str = "status"


@dataclass(frozen=True, kw_only=True)
class SqlError:
    """What PostgreSQL said about a failing file, located in the file."""

    message: str
    sqlstate: str | None = None
    detail: str | None = None
    hint: str | None = None
    context: str | None = None
    line: int | None = None
    column: int | None = None
    constraint: str | None = None
    dependency: str | None = None  # for a foreign-key-order failure: the dependency that caused it


@dataclass(frozen=True, kw_only=True)
class StepReport:
    version: int
    name: str
    direction: str
    filename: str | None  # None: no file for this direction (golang-migrate's no-op step)
    mode: str
    duration_ms: float


@dataclass(frozen=True, kw_only=True)
class StepFailure:
    version: int
    name: str
    direction: str
    filename: str | None
    mode: str
    error: SqlError


@dataclass(frozen=True, kw_only=True)
class MigrateResult(ResultBase):
    """The outcome of up/down/goto/force: what ran, what failed, the state before and after."""

    env: str
    operation: str
    outcome: Outcome
    before: State
    after: State
    steps: tuple[StepReport, ...] = ()
    failure: StepFailure | None = None
    snapshot: str | None = None  # the snapshot taken before anything changed
    duration_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Missing:
    """One privilege a role lacks: ``what`` names it and why the operation needs it; ``fix`` is
    the statement (or setting) that gives it."""

    what: str
    fix: str


@dataclass(frozen=True, kw_only=True)
class Shortfall:
    """What ``role`` lacks for an operation, found in the catalogs before anything changed.
    ``setting``: a configuration line under the environment that avoids the need (another
    restore_mode), with what that needs in turn (``setting_needs``; empty: nothing more)."""

    role: str
    missing: tuple[Missing, ...]
    setting: str | None = None
    setting_needs: tuple[Missing, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Refusal(ResultBase):
    env: str
    operation: str
    reason: Reason
    state: State | None = None
    holder: LockHolder | None = None
    mismatch: Mismatch | None = None
    problems: tuple["FileProblem", ...] = ()
    checks: tuple["Check", ...] = ()
    snapshot: str | None = None
    lock_dir: "LockDirInfo | None" = None  # LOCK_HELD by deploy.sh's lock directory, not the advisory lock
    allowed: tuple[str, ...] = ()  # WRONG_CHANNEL: the channels; NOT_OPERATOR: the operators
    owner: str | None = None       # OTHER_ENVIRONMENT, MANIFEST_MISMATCH: whose the snapshot's name says it is
    # UNCLAIMED_SNAPSHOT: the environments a legacy name answers to (none, or several);
    # MANIFEST_MISMATCH: the environment its manifest names (empty: none, or unreadable)
    claimants: tuple[str, ...] = ()
    detail: str | None = None  # CONTROL_UNREACHABLE: the connection error (masked), naming the control database
    shortfall: Shortfall | None = None  # MISSING_PRIVILEGE
    outcome: Outcome = Outcome.REFUSED


@dataclass(frozen=True, kw_only=True)
class DryRunFile:
    version: int
    name: str
    filename: str | None
    # "ok"; "partial": what ran passed, statements that cannot run in a transaction did not run;
    # "skipped": none of it could run in a transaction; "failed"; "not_run": after a failure
    status: str
    note: str | None = None
    error: SqlError | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DryRunResult(ResultBase):
    env: str
    state: State
    files: tuple[DryRunFile, ...]
    outcome: Outcome
    operation: str = "dry-run"


@dataclass(frozen=True, kw_only=True)
class FileProblem:
    filename: str
    severity: str  # "error" or "warning"
    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, kw_only=True)
class ValidateResult(ResultBase):
    env: str
    files_checked: int
    problems: tuple[FileProblem, ...] = field(default_factory=tuple)
    outcome: Outcome = Outcome.DONE
    operation: str = "validate"


@dataclass(frozen=True, kw_only=True)
class SnapshotInfo:
    name: str
    kind: str  # "dbops" or "legacy"
    created_at: datetime
    size: int
    reason: str
    version: int | None
    dirty: bool
    pinned: bool


@dataclass(frozen=True, kw_only=True)
class DiskUsage:
    total: int
    used: int
    free: int
    snapshots_bytes: int


@dataclass(frozen=True, kw_only=True)
class SnapshotListResult(ResultBase):
    env: str
    snapshots: tuple[SnapshotInfo, ...]  # newest first
    orphans: tuple[str, ...]
    incomplete: tuple[str, ...]
    disk: DiskUsage
    outcome: Outcome = Outcome.DONE
    operation: str = "snapshot list"


@dataclass(frozen=True, kw_only=True)
class SnapshotCreated(ResultBase):
    env: str
    snapshot: SnapshotInfo
    sha256: str
    database_size: int
    duration_ms: float
    outcome: Outcome = Outcome.DONE
    operation: str = "snapshot create"


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class SnapshotVerifyResult(ResultBase):
    env: str
    name: str
    checks: tuple[Check, ...]
    outcome: Outcome
    operation: str = "snapshot verify"


@dataclass(frozen=True, kw_only=True)
class TableRows:
    table: str
    rows: int


@dataclass(frozen=True, kw_only=True)
class RestoreResult(ResultBase):
    env: str
    name: str
    mode: str
    safety_snapshot: str
    before: State
    after: State
    largest_tables: tuple[TableRows, ...]
    kept_database: str | None
    duration_ms: float
    outcome: Outcome = Outcome.DONE
    operation: str = "snapshot restore"


@dataclass(frozen=True, kw_only=True)
class PinResult(ResultBase):
    env: str
    name: str
    pinned: bool
    outcome: Outcome
    operation: str = "snapshot pin"


@dataclass(frozen=True, kw_only=True)
class CleanupResult(ResultBase):
    env: str
    dry_run: bool
    retention_days: int
    keep_last: int
    deleted: tuple[SnapshotInfo, ...]
    kept: tuple[tuple[SnapshotInfo, str], ...]
    freed_bytes: int
    disk_before: DiskUsage
    disk_after: DiskUsage
    outcome: Outcome
    operation: str = "snapshot cleanup"


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    at: datetime
    actor: str
    channel: str | None
    surface: str  # "slack", "console", "cli", "scheduler"
    environment: str | None
    command: str  # the command as the grammar reads it, e.g. "migrate up"
    arguments: dict
    outcome: str  # an Outcome value, or "error"
    detail: str | None
    duration_ms: float


@dataclass(frozen=True, kw_only=True)
class LossyStatement:
    filename: str
    line: int
    description: str  # e.g. "drops table users"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One lint finding on a pending migration file (``commands.lint.lint``, squawk)."""

    rule: str                 # "drop-column", "require-concurrent-index-creation", …
    severity: str             # "error", "warning" or "info"
    filename: str
    line: int | None
    message: str
    source: str = "dbops"     # "dbops" (commands.lint.lint) or "squawk"
    allowed_by: str | None = None  # why it is accepted (an allow comment or lint_allow): shown, never blocking
    # why a live-data risk was lowered to info: the table is new in this run, absent or empty now
    live_judgement: str | None = None


@dataclass(frozen=True, kw_only=True)
class LockEstimate:
    """The lock one statement takes on one table (PostgreSQL's table-level lock modes)."""

    line: int
    table: str
    lock: str       # "ACCESS EXCLUSIVE", "SHARE", …
    statement: str  # "ALTER TABLE", "CREATE INDEX", …


@dataclass(frozen=True, kw_only=True)
class PlanFile:
    version: int
    name: str
    filename: str | None  # the up file; None: no up file (a no-op step)
    mode: str             # how it will run: "transactional", "own-transaction", "no-transaction"
    findings: tuple[Finding, ...] = ()
    locks: tuple[LockEstimate, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlanResult(ResultBase):
    """``/migrate plan``: the pending migrations in order, linted; FAILED when a finding blocks ``up``."""

    env: str
    state: State
    files: tuple[PlanFile, ...]
    block_severity: str  # findings at or above it (not allowed) make ``up`` a request; "none": never
    blocking: int        # how many findings block
    outcome: Outcome
    operation: str = "plan"


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
    result: "Result | None" = None
    outcome: Outcome = Outcome.DONE
    operation: str = "approval"


@dataclass(frozen=True, kw_only=True)
class ApprovalsResult(ResultBase):
    env: str | None
    pending: tuple[ApprovalRequest, ...]
    outcome: Outcome = Outcome.DONE
    operation: str = "approvals"


@dataclass(frozen=True, kw_only=True)
class RollbackOption:
    """One way out that ``/rollback`` offers for the current state (the guide's methods)."""

    method: str                 # "down", "restore", "force-down", "force-previous"
    command: str                # what choosing it runs (before its reason is added)
    recommended: bool
    available: bool
    why_not: str | None = None  # when not available
    impact: Impact | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RollbackPlan(ResultBase):
    env: str
    state: State
    migration: MigrationInfo | None   # the one being undone (the current, or the failed, version)
    options: tuple[RollbackOption, ...]
    outcome: Outcome = Outcome.DONE
    operation: str = "rollback plan"


@dataclass(frozen=True, kw_only=True)
class OrphanCount:
    """Rows of ``table`` whose foreign key ``constraint`` points at no row of ``references``."""

    constraint: str
    table: str
    columns: tuple[str, ...]
    references: str
    rows: int


@dataclass(frozen=True, kw_only=True)
class AppHealthCheck:
    url: str
    passed: bool
    message: str
    version: int | None = None
    dirty: bool | None = None


@dataclass(frozen=True, kw_only=True)
class RollbackResult(ResultBase):
    env: str
    method: str
    reason: str
    requester: str
    approved_by: str | None
    before: State
    after: State
    expected_version: int | None      # where the rollback should have left the database
    step: "Result"                    # what the underlying down/goto/restore returned
    snapshots: tuple[str, ...]        # safety snapshots taken before anything changed
    foreign_keys_checked: int
    orphans: tuple[OrphanCount, ...]  # only constraints with violations
    app_health: AppHealthCheck | None
    recorded: bool                    # in the control database's rollback log
    deployment_state: str | None      # the deployment-state.json written, if configured
    outcome: Outcome = Outcome.DONE
    operation: str = "rollback"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """A watcher's alert about an environment's migration state, as the control database holds it."""

    id: int
    env: str
    subject: str                 # "dirty" or "mismatch"
    version: int
    opened_at: datetime
    notified_at: datetime
    reminders: int
    failed_file: str | None      # the migration file that left it dirty (or the newest file, for a mismatch)
    latest_file_version: int | None
    snapshot: SnapshotInfo | None  # the newest snapshot taken before that migration
    channel: str | None = None
    message_ts: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None    # who ran the command that fixed it; None: fixed outside dbops
    resolved_with: str | None = None  # that command, e.g. "snapshot restore"
    holder: LockHolder | None = None         # "stale_lock": who holds the migration lock
    lock_dir: "LockDirInfo | None" = None    # "stale_lock_dir": the stale lock directory
    disk: "DiskWatchInfo | None" = None      # "disk": the file system and its biggest and oldest snapshots


@dataclass(frozen=True, kw_only=True)
class LockDirInfo:
    """A configured lock directory (deploy.sh's ``mkdir`` lock) as found now."""

    path: str
    exists: bool
    locked_at: datetime | None = None   # from its ``locked_at`` file, else when the directory was made
    locked_at_source: str | None = None  # "file" or "mtime"
    pid: int | None = None              # from its ``pid`` file, when it records one
    pid_alive: bool | None = None       # None: no pid recorded
    stale: bool = False                 # older than lock_dir_timeout_minutes and its owner not alive


@dataclass(frozen=True, kw_only=True)
class DiskWatchInfo:
    directory: str
    total: int
    used: int
    percent: float   # df's Use%: used / (used + free), rounded up
    # What an unprivileged user may still write (f_bavail, df's "Avail"); None in alerts stored
    # before it was recorded.
    free: int | None = None
    threshold: int
    biggest: tuple[SnapshotInfo, ...]
    oldest: tuple[SnapshotInfo, ...]


@dataclass(frozen=True, kw_only=True)
class LockStatusResult(ResultBase):
    """``/dbops lock status``: the migration lock's holder and the configured lock directories."""

    env: str
    holder: LockHolder | None
    stale_after_minutes: int
    lock_dirs: tuple[LockDirInfo, ...]
    lock_dir_timeout_minutes: int
    outcome: Outcome = Outcome.DONE
    operation: str = "lock status"


@dataclass(frozen=True, kw_only=True)
class LockReleaseResult(ResultBase):
    """``/dbops lock release``: what was released, and what was not and why.

    ``terminated``: the idle holder's pid whose session was ended. ``refused``: a code per
    lock kept ("holder_active", "holder_idle_briefly", "dir_fresh", "dir_owner_alive",
    "dir_unknown_owner_lock_held"); ``removed``: the lock directories taken away.
    """

    env: str
    holder: LockHolder | None
    terminated: int | None
    removed: tuple[LockDirInfo, ...]
    kept: tuple[tuple[str, str], ...]   # (what: "advisory lock" or a path, why: a code above)
    outcome: Outcome
    operation: str = "lock release"


@dataclass(frozen=True, kw_only=True)
class AlertEvent:
    """What a watcher's tick has to say: an alert ``opened``, a ``reminder``, or ``resolved``."""

    kind: str
    alert: Alert
    state: State | None = None  # the migration state at the tick (None: the disk watcher reads none)
    outcome: Outcome = Outcome.DONE
    operation: str = "watch"


@dataclass(frozen=True, kw_only=True)
class OperationRecord:
    """An operation as the control database knows it while it runs (or after it was cut off)."""

    id: int
    environment: str | None
    command: str
    actor: str
    channel: str | None
    message_ts: str | None
    owner: str
    step: str | None
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, kw_only=True)
class HistoryResult(ResultBase):
    env: str | None
    entries: tuple[AuditEntry, ...]  # newest first
    outcome: Outcome = Outcome.DONE
    operation: str = "history"


@dataclass(frozen=True, kw_only=True)
class HelpResult(ResultBase):
    usage: tuple[str, ...]
    env: str | None = None
    outcome: Outcome = Outcome.DONE
    operation: str = "help"


class Verdict(str, Enum):
    PASS = "pass"
    WARN = "warn"  # works, with a limit or a risk worth knowing
    FAIL = "fail"  # an operation will fail or refuse
    SKIP = "skip"  # not checked: not configured, or what it needs failed first


@dataclass(frozen=True, kw_only=True)
class DoctorCheck:
    """One precondition ``/dbops doctor`` checked. ``detail``: what was found; ``fix``: what
    to change (the privilege to grant, the config key to set), None when nothing needs doing."""

    name: str
    verdict: Verdict
    detail: str
    fix: str | None = None


@dataclass(frozen=True, kw_only=True)
class DoctorResult(ResultBase):
    """``/dbops doctor``: every check in a fixed order; FAILED when any check fails."""

    env: str
    checks: tuple[DoctorCheck, ...]
    outcome: Outcome
    operation: str = "doctor"


Result = (StatusResult | MigrateResult | Refusal | DryRunResult | ValidateResult | SnapshotListResult | SnapshotCreated
          | SnapshotVerifyResult | RestoreResult | PinResult | CleanupResult | HistoryResult | HelpResult
          | ApprovalNeeded | ApprovalRefused | ApprovalDecided | ApprovalsResult | RollbackPlan | RollbackResult
          | LockStatusResult | LockReleaseResult | PlanResult | DoctorResult)
