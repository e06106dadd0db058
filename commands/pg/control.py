"""dbops' own state, in the control database: never one of the databases it manages, so
restoring a snapshot can never erase the record of who restored it.

Its schema is a golang-migrate migration set (``commands/control_migrations``) applied by
dbops' own engine at start-up, under the same advisory lock, so several replicas starting
at once apply it once. A process that starts while the control database cannot be reached
keeps going: the schema is brought up to date the first time it can be
(``ensure_control_schema``), before the first audit record is written there.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import structlog
from psycopg.types.json import Jsonb

from commands.errors import DatabaseError, DatabaseUnreachable
from commands.pg import applied_files
from commands.pg.connect import CONTROL, connect, control_connection, control_error, run_once
from commands.pg.lock import PgAdvisoryLock, golang_migrate_lock_key
from commands.pg.state import PgVersionStore
from commands.redact import redact
from commands.migrate.plans import plan_up
from commands.results import AppliedFile, AuditEntry, OperationRecord, State
from commands.source import load_source

if TYPE_CHECKING:  # a rollback's record: named, not loaded by every command that writes the audit log
    from commands.app.results import HookCall
    from commands.rollback.results import RollbackResult

CONTROL_MIGRATIONS = Path(__file__).resolve().parents[1] / "control_migrations"
CONTROL_TABLE = "dbops_schema_migrations"
log = structlog.get_logger("dbops.control")
_up_to_date: set[str] = set()  # the control databases this process has migrated
_migrating = threading.Lock()


def ensure_control_schema(url: str) -> None:
    """Bring the control database's schema up to date unless this process already did.

    Raises DatabaseUnreachable (its message starts "control database: ") while the control
    database cannot be reached, and DatabaseError when it cannot be migrated."""
    if url in _up_to_date:
        return
    with _migrating:
        if url not in _up_to_date:
            migrate_control_database(url)


def prepare_control_database(url: str) -> bool:
    """At start-up: bring the control database's schema up to date, or, when it cannot be
    reached, log why and return False (``ensure_control_schema`` does it later). Any other
    fault (a dirty control database, a failing migration) is raised: no use starting."""
    try:
        migrate_control_database(url)
    except DatabaseUnreachable as err:
        log.error("control.unreachable", error=err.message)
        return False
    return True


def migrate_control_database(url: str) -> int:
    """Bring the control database's schema up to date; return its version."""
    source = load_source(CONTROL_MIGRATIONS)
    with connect(url, database=CONTROL, application_name="dbops-control") as conn:
        schema = conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()[0]
        # Every start of a command line passes here. Each file commits with its version, so
        # the newest version, clean, means nothing is left to do: that needs no lock.
        newest = State(version=source.last_version, dirty=False)
        if PgVersionStore(conn, schema=schema, table=CONTROL_TABLE).read() == newest:
            _up_to_date.add(url)  # so that writing the audit log does not connect to check it again
            return newest.version
        lock = PgAdvisoryLock(conn, golang_migrate_lock_key(schema=schema, table=CONTROL_TABLE, database_url=url))
        holder = lock.acquire(60)
        if holder is not None:
            raise DatabaseError(f"The control database's schema is being changed by pid {holder.pid} "
                                f"({holder.application_name}); try again when it is done.")
        try:
            store = PgVersionStore(conn, schema=schema, table=CONTROL_TABLE)
            store.ensure()
            state = store.read()
            if state.dirty:
                raise DatabaseError(f"The control database is dirty at version {state.version}; "
                                    "restore it or fix it by hand before starting dbops.")
            from commands.pg.runner import PgMigrationRunner, Timeouts  # only when there is something to apply
            from commands.sql.sqlscan import scan
            runner = PgMigrationRunner(conn, store, Timeouts(lock_timeout="30s", statement_timeout="0"))
            for step in plan_up(source, state.version, None):
                error = runner.apply(scan(step.file.path.read_text(encoding="utf-8")), step.target)
                if error is not None:
                    raise DatabaseError(f"Control database migration {step.migration.label} failed: {error.message}")
            version = store.read().version
            _up_to_date.add(url)
            return version
        finally:
            lock.release()


class PgAuditLog:
    """The audit log (contract: ``commands.migrations.AuditLog``)."""

    def __init__(self, url: str, *, pooled: bool = True) -> None:
        self.url = url
        self.pooled = pooled  # False: a session of its own each time (a one-shot command line)

    def check(self) -> None:
        ensure_control_schema(self.url)
        run_once(self.url, "SELECT 1", {}, pooled=self.pooled, failure="could not reach it")

    def record(self, entry: AuditEntry) -> None:
        ensure_control_schema(self.url)
        try:
            with control_connection(self.url, pooled=self.pooled) as conn:
                conn.execute(
                    """INSERT INTO dbops_audit_log (at, actor, channel, surface, environment, command, arguments,
                                                    outcome, detail, duration_ms)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (entry.at, entry.actor, entry.channel, entry.surface, entry.environment, entry.command,
                     Jsonb(entry.arguments), entry.outcome, entry.detail, entry.duration_ms))
        except psycopg.Error as err:
            raise control_error("could not write the audit log", err) from None

    def latest(self, environment: str | None, limit: int) -> list[AuditEntry]:
        rows = run_once(self.url,
                        """SELECT at, actor, channel, surface, environment, command, arguments, outcome, detail,
                                  duration_ms
                           FROM dbops_audit_log WHERE %(env)s::text IS NULL OR environment = %(env)s
                           ORDER BY at DESC, id DESC LIMIT %(limit)s""", {"env": environment, "limit": limit},
                        pooled=self.pooled, failure="could not read the audit log")
        return [AuditEntry(at=r[0], actor=r[1], channel=r[2], surface=r[3], environment=r[4], command=r[5],
                           arguments=r[6], outcome=r[7], detail=r[8], duration_ms=r[9]) for r in rows]

    def record_file(self, entry: AppliedFile) -> None:
        ensure_control_schema(self.url)
        applied_files.record_file(self.url, entry, pooled=self.pooled)

    def applied_files(self, environment: str) -> dict[int, AppliedFile]:
        ensure_control_schema(self.url)
        return applied_files.applied_files(self.url, environment, pooled=self.pooled)

    def file_history(self, environment: str | None, limit: int) -> list[AppliedFile]:
        ensure_control_schema(self.url)
        return applied_files.file_history(self.url, environment, limit, pooled=self.pooled)


class PgOperations:
    """Running operations and their heartbeats (contract: ``commands.migrations.Operations``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _execute(self, query: str, params: dict) -> list[tuple]:
        return run_once(self.url, query, params, failure="could not update the operations table")

    def start(self, *, environment: str | None, command: str, actor: str, channel: str | None,
              message_ts: str | None, owner: str) -> int:
        return self._execute(
            """INSERT INTO dbops_operations (environment, command, actor, channel, message_ts, owner)
               VALUES (%(environment)s, %(command)s, %(actor)s, %(channel)s, %(message_ts)s, %(owner)s)
               RETURNING id""",
            {"environment": environment, "command": command, "actor": actor, "channel": channel,
             "message_ts": message_ts, "owner": owner})[0][0]

    def record_step(self, operation_id: int, step: str) -> None:
        self._execute("UPDATE dbops_operations SET step = %(step)s, heartbeat_at = now() WHERE id = %(id)s",
                      {"step": step, "id": operation_id})

    def beat(self, owner: str) -> None:
        self._execute("UPDATE dbops_operations SET heartbeat_at = now() WHERE owner = %(owner)s AND state = 'running'",
                      {"owner": owner})

    def finish(self, operation_id: int, outcome: str) -> None:
        self._execute("""UPDATE dbops_operations SET state = 'finished', outcome = %(outcome)s, finished_at = now()
                         WHERE id = %(id)s AND state = 'running'""", {"outcome": outcome, "id": operation_id})

    def reap(self, stale_after_seconds: float) -> list[OperationRecord]:
        # The state condition makes the update the arbiter: of two processes reaping at once,
        # only one updates (and so returns) each row.
        rows = self._execute(
            """UPDATE dbops_operations SET state = 'interrupted', finished_at = now()
               WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => %(stale)s)
               RETURNING id, environment, command, actor, channel, message_ts, owner, step, started_at, heartbeat_at""",
            {"stale": stale_after_seconds})
        return [OperationRecord(id=r[0], environment=r[1], command=r[2], actor=r[3], channel=r[4], message_ts=r[5],
                                owner=r[6], step=r[7], started_at=r[8], heartbeat_at=r[9]) for r in sorted(rows)]


class PgRollbackLog:
    """The rollback log (contract: ``commands.migrations.RollbackLog``)."""

    def __init__(self, url: str, *, pooled: bool = True) -> None:
        self.url = url
        self.pooled = pooled  # False: a session of its own each time (a one-shot command line)

    def record(self, result: RollbackResult) -> None:
        health, hooks = result.app_health, result.app_hooks
        checks = {"foreign_keys_checked": result.foreign_keys_checked,
                  "orphans": [{"constraint": o.constraint, "table": o.table, "rows": o.rows} for o in result.orphans],
                  "app_health": None if health is None else {
                      "url": health.url, "passed": health.passed, "message": health.message,
                      **({} if health.waited_ms is None else {"waited_ms": round(health.waited_ms)})},
                  "app_hooks": None if hooks is None else {
                      "pause": _hook_call(hooks.paused), "resume": _hook_call(hooks.resumed),
                      "change_failed": hooks.change_failed},
                  "snapshots": list(result.snapshots)}
        try:
            with control_connection(self.url, pooled=self.pooled) as conn:
                conn.execute(
                    """INSERT INTO dbops_rollbacks (environment, method, reason, requester, approved_by, version_before,
                                                    dirty_before, version_after, dirty_after, outcome, checks)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (result.env, result.method, result.reason, result.requester, result.approved_by,
                     result.before.version, result.before.dirty, result.after.version, result.after.dirty,
                     result.outcome.value, Jsonb(checks)))
        except psycopg.Error as err:
            raise control_error("could not write the rollback log", err) from None


def _hook_call(call: HookCall | None) -> dict | None:
    """One call of an application hook as the rollback log keeps it: what was called and what it
    answered. The URL is the shown one (password masked, query cut); headers are never kept."""
    if call is None:
        return None
    return {"hook": call.hook, "method": call.method, "url": call.url, "done": call.done,
            "http_status": call.http_status, "answer": redact(call.message), "latency_ms": round(call.latency_ms)}
