"""What every operation runs with: settings, and the collaborators that touch the world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from commands.config import Settings
from commands.migrations import AuditLog, Databases, Snapshotter
from commands.results import Progress


def ignore_progress(progress: Progress) -> None:
    """The default for surfaces that only show the result."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who asked, and from where (``channel`` None outside Slack)."""

    user: str
    channel: str | None = None
    surface: str = "cli"  # "slack", "console", "cli", "scheduler"


@dataclass(frozen=True, kw_only=True)
class Context:
    settings: Settings
    databases: Databases
    snapshots: Snapshotter
    actor: Actor
    audit: AuditLog | None = None
    clock: Callable[[], datetime] = utc_now
    progress: Callable[[Progress], None] = ignore_progress

    def step(self, step: str, detail: str | None = None) -> None:
        self.progress(Progress(step=step, detail=detail))

    def snapshot_progress(self, read: int, written: int, total: int) -> None:
        """The Snapshotter's progress callback, passed on as a "snapshot" step."""
        self.progress(Progress(step="snapshot", read_bytes=read, written_bytes=written, total_bytes=total))
