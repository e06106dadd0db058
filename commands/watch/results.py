"""What the background watchers report: alerts and their events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commands.results import LockDirInfo, LockHolder, Outcome, State
from commands.sessions import InvalidIndex
from commands.schema.compare import Difference
from commands.snapshot.results import SnapshotInfo


@dataclass(frozen=True, kw_only=True)
class Alert:
    """A watcher's alert about an environment's migration state, as the control database holds it."""

    id: int
    env: str
    subject: str                 # "dirty", "mismatch", "stale_lock", "stale_lock_dir", "disk", "drift"
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
    drift: "DriftWatchInfo | None" = None    # "drift": the differences from the expected schema
    # "dirty" after a failed CREATE INDEX CONCURRENTLY: the INVALID indexes it left, and the
    # version before the failed one (what to force once they are dropped).
    invalid_indexes: tuple[InvalidIndex, ...] = ()
    previous_version: int | None = None


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
class DriftWatchInfo:
    """What a drift alert is about: the live schema against the expected schema of ``version``.
    ``digest`` identifies the whole set of differences (a different set is a new alert);
    ``differences`` are the first ``SHOWN`` of them, ``total`` how many there were."""

    version: int
    digest: str
    total: int
    differences: tuple[Difference, ...]


@dataclass(frozen=True, kw_only=True)
class AlertEvent:
    """What a watcher's tick has to say: an alert ``opened``, a ``reminder``, or ``resolved``."""

    kind: str
    alert: Alert
    state: State | None = None  # the migration state at the tick (None: the disk watcher reads none)
    outcome: Outcome = Outcome.DONE
    operation: str = "watch"
    superseded: bool = False    # resolved because a different alert on the same subject replaces it (drift)
