"""The stale-lock and disk watchers: one tick per environment, like the dirty-state watcher.

Stale lock: the migration advisory lock held longer than ``stale_lock_minutes`` (measured
from its holder's session start: the ``migrate`` CLI connects, locks and migrates), or a
configured lock directory whose ``locked_at`` is older than ``lock_dir_timeout_minutes``.
Disk: the snapshot directory's file system fuller than ``disk_alert_percent``.

Each raises one alert while the condition lasts (the alert store decides who says it, so
several replicas say it once) and resolves it when the condition is gone. An alert's
``version`` identifies what it is about: the holder's pid, the lock directory's
``locked_at`` (Unix seconds); a different holder or a lock taken again is a new alert.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from typing import Callable

import structlog

from commands.lock import lock_dirs
from commands.config import EnvironmentSettings, Settings
from commands.migrations import Alerts, AuditLog, Databases
from commands.watch.results import Alert, AlertEvent, DiskWatchInfo
from commands.results import State
from commands.snapshot.snapshot_scope import scope_of
from commands.units import used_percent

log = structlog.get_logger("dbops.watch")
SHOWN_SNAPSHOTS = 3
RELEASES = ("dbops lock release",)


class _Subjects:
    """Open, keep or resolve one alert per subject from what a tick found."""

    def __init__(self, alerts: Alerts, audit: AuditLog | None) -> None:
        self.alerts, self.audit = alerts, audit

    def settle(self, env: str, subject: str, found: Alert | None, now: datetime,
               state: State | None) -> list[AlertEvent]:
        events = []
        current = self.alerts.open_alert(env, subject)
        if current is not None and (found is None or found.version != current.version):
            by, how = self._who_released(current, fixes=RELEASES if subject != "disk" else ())
            resolved = self.alerts.resolve(current.id, now=now, resolved_by=by, resolved_with=how)
            if resolved is not None:
                log.info("alert.resolved", env=env, subject=subject, by=by)
                events.append(AlertEvent(kind="resolved", alert=resolved, state=state))
            current = None
        if found is not None and current is None:
            raised = self.alerts.raise_alert(found)
            if raised is not None:
                log.warning("alert.opened", env=env, subject=subject, version=found.version)
                events.append(AlertEvent(kind="opened", alert=raised, state=state))
        return events

    def _who_released(self, alert: Alert, fixes: tuple[str, ...]) -> tuple[str | None, str | None]:
        if self.audit is None or not fixes:
            return None, None
        for entry in self.audit.latest(alert.env, 50):
            if entry.at <= alert.opened_at:
                break
            if entry.command in fixes and entry.outcome == "done":
                return entry.actor, entry.command
        return None, None


def _alert(env: str, subject: str, version: int, now: datetime, **details) -> Alert:
    return Alert(id=0, env=env, subject=subject, version=version, opened_at=now, notified_at=now, reminders=0,
                 failed_file=None, latest_file_version=None, snapshot=None, **details)


class StaleLockWatcher:
    watcher = "stale_lock"  # its name in the metrics

    def __init__(self, databases: Databases, alerts: Alerts, *, audit: AuditLog | None,
                 clock: Callable[[], datetime]) -> None:
        self.databases, self.clock = databases, clock
        self.subjects = _Subjects(alerts, audit)

    def tick(self, env: EnvironmentSettings) -> list[AlertEvent]:
        now = self.clock()
        with self.databases.open(env) as db:
            holder = db.lock.holder()
            state = db.store.read()
        stale = None
        if holder is not None and holder.since is not None and \
                now - holder.since >= timedelta(minutes=env.stale_lock_minutes):
            stale = _alert(env.name, "stale_lock", holder.pid, now, holder=holder)
        events = self.subjects.settle(env.name, "stale_lock", stale, now, state)
        timeout = timedelta(minutes=env.lock_dir_timeout_minutes)
        old = [info for info in (lock_dirs.inspect(p, now=now, timeout=timeout) for p in env.lock_dirs)
               if info.locked_at is not None and now - info.locked_at >= timeout]
        oldest = min(old, key=lambda info: info.locked_at, default=None)
        stale_dir = (_alert(env.name, "stale_lock_dir", int(oldest.locked_at.timestamp()), now, lock_dir=oldest)
                     if oldest is not None else None)
        return events + self.subjects.settle(env.name, "stale_lock_dir", stale_dir, now, state)


class DiskWatcher:
    """``settings``: to tell each environment's snapshots from the others' in a shared directory
    (an alert names only the environment's own)."""

    watcher = "disk"  # its name in the metrics

    def __init__(self, alerts: Alerts, *, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.clock, self.settings = clock, settings
        self.subjects = _Subjects(alerts, None)

    def tick(self, env: EnvironmentSettings) -> list[AlertEvent]:
        if env.snapshot_dir is None:
            return []
        now = self.clock()
        directory = env.snapshot_dir
        usage = shutil.disk_usage(directory if directory.exists() else directory.parent)
        percent = used_percent(usage.used, usage.free)
        full = None
        if percent >= env.disk_alert_percent:
            snapshots = scope_of(self.settings, env).list().snapshots
            biggest = sorted(snapshots, key=lambda s: (-s.size, s.name))[:SHOWN_SNAPSHOTS]
            oldest = sorted(snapshots, key=lambda s: (s.created_at, s.name))[:SHOWN_SNAPSHOTS]
            full = _alert(env.name, "disk", 0, now, disk=DiskWatchInfo(
                directory=str(directory), total=usage.total, used=usage.used, free=usage.free, percent=percent,
                threshold=env.disk_alert_percent, biggest=tuple(s.info() for s in biggest),
                oldest=tuple(s.info() for s in oldest)))
        return self.subjects.settle(env.name, "disk", full, now, None)
