"""The dirty-state watcher: one tick per environment every ``dirty_check_seconds``.

A tick reads ``schema_migrations`` and the migration files and says what changed: an alert
opened (the database turned dirty, or is at a version no file has), a reminder (still so,
``dirty_reminder_minutes`` after the last message), or resolved (clean again; with who fixed
it and how, when that went through dbops). Ticks are idempotent and safe to run on several
replicas at once: the alert store decides who says each thing, so each is said once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import structlog

from commands.config import EnvironmentSettings
from commands.migrate.migrate_ops import mismatch_of, read_sql
from commands.migrations import Alerts, AuditLog, Databases
from commands.observe import NOBODY, Observer
from commands.watch.results import Alert, AlertEvent
from commands.errors import CommandError
from commands.results import State
from commands.sessions import InvalidIndex
from commands.snapshot.store import store_for
from commands.source import MigrationSource, load_source

log = structlog.get_logger("dbops.watch")
SUBJECTS = ("dirty", "mismatch")
# Commands after which a dirty or mismatched database may be clean again.
FIXES = ("migrate force", "migrate baseline", "migrate down", "migrate goto", "migrate up", "snapshot restore", "rollback")


class DirtyWatcher:
    watcher = "dirty"  # its name in the metrics

    def __init__(self, databases: Databases, alerts: Alerts, *, audit: AuditLog | None,
                 clock: Callable[[], datetime], observer: Observer = NOBODY) -> None:
        """``observer`` hears each state read (the dirty gauge of dbops serve's metrics)."""
        self.databases, self.alerts, self.audit, self.clock = databases, alerts, audit, clock
        self.observer = observer

    def tick(self, env: EnvironmentSettings) -> list[AlertEvent]:
        now = self.clock()
        source = load_source(env.migrations_dir)
        invalid: tuple = ()
        with self.databases.open(env) as db:
            state = db.store.read()
            if state.dirty and self.alerts.open_alert(env.name, "dirty") is None:
                invalid = _invalid_indexes(db, source, state)
        self.observer.state_seen(environment=env.name, version=state.version, dirty=state.dirty)
        subject = "dirty" if state.dirty else ("mismatch" if mismatch_of(source, state) else None)
        events = []
        for kind in SUBJECTS:
            current = self.alerts.open_alert(env.name, kind)
            if current is not None and (kind != subject or current.version != state.version):
                events += self._resolve(current, state, now)
        if subject is None:
            return events
        current = self.alerts.open_alert(env.name, subject)
        if current is None:
            raised = self.alerts.raise_alert(self._alert(env, source, subject, state, now, invalid))
            if raised is not None:
                log.warning("alert.opened", env=env.name, subject=subject, version=state.version)
                events.append(AlertEvent(kind="opened", alert=raised, state=state))
        elif now - current.notified_at >= timedelta(minutes=env.dirty_reminder_minutes):
            reminded = self.alerts.remind(current.id, last_notified=current.notified_at, now=now)
            if reminded is not None:
                events.append(AlertEvent(kind="reminder", alert=reminded, state=state))
        return events

    def _alert(self, env: EnvironmentSettings, source: MigrationSource, subject: str, state: State,
               now: datetime, invalid: tuple[InvalidIndex, ...] = ()) -> Alert:
        migration = source.get(state.version)
        failed = migration.up.filename if migration is not None and migration.up is not None else None
        snapshots = store.list().snapshots if (store := store_for(env)) is not None else ()
        # Only dbops snapshots record a version, and their names say whose they are.
        before = next((s for s in snapshots if s.environment == env.name and s.version is not None
                       and s.version < state.version), None)
        return Alert(id=0, env=env.name, subject=subject, version=state.version, opened_at=now, notified_at=now,
                     reminders=0, failed_file=failed, latest_file_version=source.last_version,
                     snapshot=before.info() if before else None, invalid_indexes=invalid,
                     previous_version=source.previous(state.version) if invalid else None)

    def _resolve(self, alert: Alert, state: State, now: datetime) -> list[AlertEvent]:
        by, how = self._who_fixed(alert)
        resolved = self.alerts.resolve(alert.id, now=now, resolved_by=by, resolved_with=how)
        if resolved is None:
            return []
        log.info("alert.resolved", env=alert.env, subject=alert.subject, by=by, how=how)
        return [AlertEvent(kind="resolved", alert=resolved, state=state)]

    def _who_fixed(self, alert: Alert) -> tuple[str | None, str | None]:
        """The newest command through dbops since the alert that could have fixed it."""
        if self.audit is None:
            return None, None
        for entry in self.audit.latest(alert.env, 50):
            if entry.at <= alert.opened_at:
                break
            planned_only = entry.command == "rollback" and not any(
                entry.arguments.get(key) not in (None, False) for key in ("steps", "to", "snapshot", "recover"))
            if entry.command in FIXES and entry.outcome == "done" and not planned_only:
                return entry.actor, entry.command
        return None, None


def _invalid_indexes(db, source: MigrationSource, state: State) -> tuple[InvalidIndex, ...]:
    """The INVALID indexes the dirty version's up file left, if it builds any concurrently: read
    once, when the alert opens. A file that cannot be read or parsed names none (the alert still
    opens: it says what it knows)."""
    migration = source.get(state.version)
    if migration is None or migration.up is None:
        return ()
    try:
        if b"concurrently" not in migration.up.path.read_bytes().lower():  # a seed file is not parsed for nothing
            return ()
    except OSError:
        return ()
    try:
        sqlfile = read_sql(migration.up)
    except CommandError:
        return ()
    if not any(s.kind == "IndexStmt" for s in sqlfile.statements):
        return ()
    return db.inspector.invalid_indexes(sqlfile)
