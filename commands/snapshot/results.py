"""What a snapshot command found or did: list, create, verify, restore, pin, cleanup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from commands.results import Check, Outcome, ResultBase, State

if TYPE_CHECKING:  # named by a restore's result only: a listing does not load the app package
    from commands.app.results import AppHooks


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
    store: str | None = None  # s3://BUCKET/PREFIX: in object storage (no disk figures)


@dataclass(frozen=True, kw_only=True)
class SnapshotListResult(ResultBase):
    env: str
    snapshots: tuple[SnapshotInfo, ...]  # newest first
    orphans: tuple[str, ...]
    incomplete: tuple[str, ...]
    disk: DiskUsage
    drills: dict[str, "DrillRecord"] = field(default_factory=dict)  # each drilled snapshot's last drill, by name
    # A page (``commands.snapshot.paging``): ``snapshots`` are the newest of those older than
    # ``before`` (all when None); ``counted`` of them were read, exactly all when ``complete``.
    # An incomplete page's ``disk`` sums the page only, and its orphans are those it came across.
    # ``more``: the name the next page continues from (None: nothing older).
    before: str | None = None
    counted: int = 0
    complete: bool = True
    more: str | None = None
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
    kept_database: str | None  # new-database mode: the replaced database, renamed and closed to connections
    duration_ms: float
    database: str | None = None    # the restored database's name (the kept one's, before the swap)
    kept_size: int | None = None   # the kept database's bytes on the server, when the server says
    app_hooks: AppHooks | None = None  # the application paused and resumed around it (commands.app.hooks)
    preserved: "PreserveReport | None" = None  # --preserve: the rows kept (a commands.preserve.results type, named only)
    jobs: int = 1  # new-database mode: pg_restore's parallel jobs; 1: one transaction
    abandoned_dropped: tuple[str, ...] = ()  # new-database mode: what killed restores had left, dropped first
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
    bundles_deleted: tuple[str, ...] = ()  # bundles of preserved rows past retention (same rules)
    export_leftovers: tuple[str, ...] = ()  # files killed --preserve exports left (commands.snapshot.bundle_leftovers)
    operation: str = "snapshot cleanup"


@dataclass(frozen=True, kw_only=True)
class DrillRecord:
    """One restore drill as the control database keeps it."""

    env: str
    snapshot: str
    drilled_at: datetime
    passed: bool
    restore_ms: float | None  # None: the restore itself failed
    size: int                 # the snapshot's bytes
    actor: str
    detail: str = ""          # a failed drill: its first failed check


@dataclass(frozen=True, kw_only=True)
class DrillResult(ResultBase):
    """``/snapshot drill``: a snapshot restored into a scratch database, checked, and dropped.

    ``name`` is None when the environment has no snapshot to drill (``outcome`` NO_CHANGE).
    ``checks`` in order: checksum, restore, version, row counts, foreign keys; a check that
    could not run because an earlier one failed is left out.
    """

    env: str
    name: str | None
    size: int = 0
    restore_ms: float | None = None
    scratch: str = ""                  # where the scratch database was
    checks: tuple[Check, ...] = ()
    largest_tables: tuple[TableRows, ...] = ()
    recorded: bool = True              # False: no control database took the result
    outcome: Outcome = Outcome.DONE    # DONE passed, FAILED a check failed
    operation: str = "snapshot drill"

    @property
    def passed(self) -> bool:
        return self.outcome == Outcome.DONE


@dataclass(frozen=True, kw_only=True)
class RestoreEstimate:
    """How long a restore of a snapshot of ``size`` bytes should take.

    From the last passed drill of the environment scaled by size (``drilled``: that snapshot's
    name), or, with none, from ``ASSUMED_BYTES_PER_SECOND`` (``drilled`` None: an estimate)."""

    seconds: float
    size: int
    drilled: str | None = None
    drilled_at: datetime | None = None
    rate: float = 0.0  # bytes of snapshot restored per second that the figure assumes
