"""What every operation runs with: settings, and the collaborators that touch the world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from commands.config import Settings
from commands.migrations import AuditLog, Databases, Snapshotter


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
