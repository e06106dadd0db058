"""What every operation runs with: settings, and the collaborators that touch the world."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Protocol

from commands.config import EnvironmentSettings, Settings
from commands.errors import ConfigError
from commands.identity import Actor
from commands.migrations import Approvals, AuditLog, Databases, RollbackLog, Snapshotter, SqlLinter
from commands.observe import NOBODY, Observer
from commands.results import Progress

if TYPE_CHECKING:
    from commands.sessions import StatementProgress
    from commands.policy import Policy
    from commands.probes import Probe, SlackCheck


def ignore_progress(progress: Progress) -> None:
    """The default for surfaces that only show the result."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AppPause(Protocol):
    """The application's side of a restore or rollback (``commands.app.hooks.AppCoordinator``)."""

    def pause(self) -> None:
        """Stop the application's writes before the change begins; called once the lock is held
        and the state checked, and again for each step of a change (only the first call acts).
        Raises (a CommandError) when the application could not be paused: nothing may change."""


@dataclass(frozen=True, kw_only=True)
class Context:
    settings: Settings
    databases: Databases
    snapshots: Snapshotter
    actor: Actor
    audit: AuditLog | None = None
    clock: Callable[[], datetime] = utc_now
    progress: Callable[[Progress], None] = ignore_progress
    policy: "Policy | None" = None
    approvals_store: Approvals | None = None
    rollback_log: RollbackLog | None = None
    linter: SqlLinter | None = None  # squawk; None: /migrate plan says it was not run
    probe: Probe | None = None       # what /dbops doctor reads from PostgreSQL
    slack: SlackCheck | None = None  # Slack's auth.test for /dbops doctor; None: no bot token here
    observer: Observer = NOBODY       # hears lock waits and retries (the metrics of dbops serve)
    # Runs an approved command as its requester, audited (the executor supplies it).
    execute: Callable[[Any, EnvironmentSettings, Actor], Any] | None = None
    # Runs another command as if ``actor`` had just typed it: policy, approval, audit (the
    # executor supplies it). An unblock's retry is an `up` like any other.
    run: Callable[[Any, Actor], Any] | None = None
    # The command's parsed SQL files (commands.migrate.migrate_ops.read_sql): the lint before an
    # `up` and the run itself read the same files, and parsing is most of reading.
    parsed: dict = field(default_factory=dict)
    # A restore or rollback with the application's hooks (commands.app.hooks): paused where the
    # change begins. None: nothing to coordinate.
    app: AppPause | None = None

    @property
    def approvals(self) -> Approvals:
        if self.approvals_store is None:
            raise ConfigError("This needs a second person's approval (require_approval, or a restore of another "
                              "environment's snapshot), and approvals live in dbops' control database: set "
                              "[control] database_url, or take the operation out of require_approval.")
        return self.approvals_store

    def step(self, step: str, detail: str | None = None) -> None:
        self.progress(Progress(step=step, detail=detail))

    def statement_progress(self, detail: str, step: str = "apply") -> Callable[[StatementProgress | None], None]:
        """The callback of a run whose long statements are sampled (the runner applying the file
        ``detail``, a restore of the snapshot ``detail``): each sample passed on as a ``step``
        that carries it."""
        return lambda sampled: self.progress(Progress(step=step, detail=detail, statement=sampled))

    def snapshot_progress(self, read: int, written: int, total: int) -> None:
        """The Snapshotter's progress callback, passed on as a "snapshot" step."""
        self.progress(Progress(step="snapshot", read_bytes=read, written_bytes=written, total_bytes=total))
