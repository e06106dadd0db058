"""What a migration command found or did: status, up/down/goto/force, dry-run, validate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from commands.results import FileCheck, FileProblem, LockHolder, Mismatch, Outcome, ResultBase, SqlError, State
from commands.snapshot.results import SnapshotInfo

if TYPE_CHECKING:  # named by an unblock's result and a lock wait only
    from commands.sessions import Blocker, LockWait


@dataclass(frozen=True, kw_only=True)
class MigrationInfo:
    version: int
    name: str
    has_up: bool
    has_down: bool


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
    files: FileCheck = FileCheck()  # applied files edited, gone or out of order
    # Which version the live schema really is: only when the version table leaves it in doubt
    # (dirty, a version no file has, none recorded on a database that has tables). A
    # commands.schema.identify.SchemaVersion, named only: schema sits above migrate.
    schema_version: "SchemaVersion | None" = None  # noqa: F821
    outcome: Outcome = Outcome.DONE
    operation: str = "status"


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
    # The last file's lock waits, when it met any: who blocked it; on a failure the blockers
    # a surface may offer to cancel or end (``migrate unblock``)
    lock_wait: LockWait | None = None


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
class ValidateResult(ResultBase):
    env: str
    files_checked: int
    problems: tuple[FileProblem, ...] = field(default_factory=tuple)
    outcome: Outcome = Outcome.DONE
    operation: str = "validate"


@dataclass(frozen=True, kw_only=True)
class UnblockResult(ResultBase):
    """``migrate unblock``: the session signalled (or why not), and the retried ``up``.

    ``blocker``: the session as found (None: no session has that pid now); ``signalled``: the
    cancel (or end) was sent to it; ``gone``: that pid now belongs to no session, or to another
    one than the one shown (it started at another time), so nothing was signalled;
    ``retry``: the result of the ``up`` run after it (a request for approval, where ``up`` needs one)."""

    env: str
    pid: int
    terminate: bool
    blocker: Blocker | None
    signalled: bool
    gone: bool = False
    retry: "Result | None" = None  # a commands.kinds.Result, named only: kinds imports this module
    outcome: Outcome = Outcome.DONE
    operation: str = "migrate unblock"
