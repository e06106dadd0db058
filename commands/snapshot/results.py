"""What a snapshot command found or did: list, create, verify, restore, pin, cleanup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commands.results import Check, Outcome, ResultBase, State


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
