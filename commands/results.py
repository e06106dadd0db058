"""Results: plain, frozen data that every surface renders in its own words.

A Result says what happened (``outcome``) and carries the facts a renderer needs; it never
holds wording. Refusals are Results too, with a ``reason`` code the renderers know.
Here: what every capability shares (Outcome, Reason, ResultBase, Progress, State, the Refusal
and its facts, the audit and history records); each capability's own results are in its
package's ``results.py``, and ``commands.kinds.Result`` is the union of them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a refusal names the hooks' answers; the app package sits above this core
    from commands.app.results import AppHooks
    from commands.sessions import Blocker, InvalidIndex, LockWait, StatementProgress


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
    EDITED_APPLIED_FILE = "edited_applied_file"  # an applied file's checksum differs from its record (``files``)
    APP_NOT_PAUSED = "app_not_paused"  # the application's pause hook did not answer 2xx (``app_hooks``)
    BLOCKED = "blocked"  # sessions hold locks a pending statement needs (``blockers``; ``detail``: "wait" or "refuse")


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
    read, written and its size), "verify", "apply" (``detail``: the file), "restore", "read-back", "build" (the
    expected schema of version ``detail``, in a scratch database), "lock-wait" (the file ``detail`` waits for a
    lock: ``lock_wait``), "blockers" (before it starts, waiting for the sessions in ``lock_wait`` to finish),
    "unblock" (signalling pid ``detail``).
    """

    step: str
    detail: str | None = None
    read_bytes: int | None = None
    written_bytes: int | None = None
    total_bytes: int | None = None
    statement: "StatementProgress | None" = None  # "apply": what PostgreSQL says of the running statement
    lock_wait: "LockWait | None" = None  # "lock-wait": what the file waits for, who blocks it, which retry


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
class Mismatch:
    """The database is at a version the files do not have (the guide's Issue 4)."""

    database_version: int
    latest_file_version: int
    ahead: bool  # True: the database is past every file; False: a version missing in between


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
    # A failed CREATE INDEX CONCURRENTLY: the INVALID indexes it left behind, read from the catalog.
    invalid_indexes: tuple["InvalidIndex", ...] = ()


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
    files: tuple["FileFlag", ...] = ()  # EDITED_APPLIED_FILE: the edited files
    app_hooks: AppHooks | None = None   # APP_NOT_PAUSED: what the pause (and the resume after it) answered
    blockers: tuple[Blocker, ...] = ()  # BLOCKED: the sessions in the way
    outcome: Outcome = Outcome.REFUSED


@dataclass(frozen=True, kw_only=True)
class FileProblem:
    filename: str
    severity: str  # "error" or "warning"
    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    passed: bool
    detail: str


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
class AppliedFile:
    """One migration file dbops applied (``direction`` "up") or reverted ("down"), as the
    control database records it."""

    environment: str
    version: int
    previous: int      # the version the database was at just before it ran (NIL_VERSION: none)
    name: str
    filename: str
    direction: str
    sha256: str        # of the file's bytes as they ran
    actor: str
    operation: str     # the command that ran it: up, down, goto
    at: datetime
    duration_ms: float


@dataclass(frozen=True, kw_only=True)
class FileFlag:
    """A migration file that is not what the database ran, or that golang-migrate will never run.

    ``problem``: "edited" (its checksum differs from the one recorded when it was applied), "gone"
    (recorded as applied; no up file has its version now) or "out_of_order" (not recorded as applied,
    and below the current version ``current``, and dbops applied a later file from a version below
    it, so it was not there then: golang-migrate's ``up`` never applies it)."""

    problem: str  # not ``kind``: the JSON output names each object's type with that key
    version: int
    filename: str
    current: int
    recorded: AppliedFile | None = None  # edited, gone: the record of its application
    sha256: str | None = None            # edited: the file's checksum now


@dataclass(frozen=True, kw_only=True)
class FileCheck:
    """What ``status`` and ``plan`` found about the applied files.

    ``unrecorded``: why there is no record to check against (no control database, or it could not
    be read), None when there is one. Without it nothing is flagged: golang-migrate keeps one
    version, so a file below it looks applied whether it ran or not. ``unchecked``: applied versions with no checksum on record
    (applied before dbops recorded them, or by the migrate CLI): they cannot be checked for edits."""

    flags: tuple[FileFlag, ...] = ()
    unrecorded: str | None = None
    unchecked: int = 0


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
    files: tuple[AppliedFile, ...] = ()  # the migration files applied or reverted there, newest first
    outcome: Outcome = Outcome.DONE
    operation: str = "history"


@dataclass(frozen=True, kw_only=True)
class HelpResult(ResultBase):
    usage: tuple[str, ...]
    env: str | None = None
    outcome: Outcome = Outcome.DONE
    operation: str = "help"
