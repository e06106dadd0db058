"""The collaborators an operation needs, as small Protocols with their contracts.

The operations are written against these; ``commands.pg`` implements them with psycopg and
PostgreSQL's programs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from commands.results import SqlError

# The Protocols only name these in annotations: importing them here would make every command
# (a status from the shell too) pay for the results of every capability.
if TYPE_CHECKING:
    from commands.approval.results import ApprovalRequest
    from commands.config import EnvironmentSettings
    from commands.lint.lint_live import LiveObjects  # the judgement needs PostgreSQL's parser
    from commands.lint.results import Finding
    from commands.preserve.results import LossEstimate, TableReimport
    from commands.results import AppliedFile, AuditEntry, LockHolder, OperationRecord, State
    from commands.sessions import Blocker, InvalidIndex, StatementProgress
    from commands.rollback.results import OrphanCount, RollbackResult
    from commands.schema.model import Schema
    from commands.snapshot.results import DrillRecord, TableRows
    from commands.snapshot.snapshots import Created, Restored, Snapshot, Verified
    from commands.sql.sqlfile import SqlFile
    from commands.watch.results import Alert


class VersionStore(Protocol):
    def read(self) -> State:
        """The recorded version; State(-1, False) when nothing is recorded. Never writes."""

    def ensure(self) -> None:
        """Create the version table if it is missing (needs the migration lock held)."""

    def write(self, version: int, dirty: bool) -> None:
        """Replace the recorded version in one transaction (golang-migrate's SetVersion)."""


class MigrationLock(Protocol):
    def acquire(self, wait_seconds: float) -> LockHolder | None:
        """Take the lock golang-migrate takes; None once held, else who holds it."""

    def release(self) -> None:
        """Give the lock back. Safe to call when not held."""

    def holder(self) -> LockHolder | None:
        """Who holds the lock now (another session), or None."""

    def terminate_idle(self, pid: int, idle_seconds: float) -> bool:
        """End the holder session ``pid`` only if it still holds the lock and has been idle for
        ``idle_seconds`` (never one that is running a statement); True when it was ended."""


DryRunRow = tuple[str, str, str | None, SqlError | None, float]


class MigrationRunner(Protocol):
    def apply(self, sqlfile: SqlFile | None, target: int,
              progress: Callable[[StatementProgress | None], None] | None = None) -> SqlError | None:
        """Run ``sqlfile`` (None: no-op) and record ``target`` clean; on error return it.

        A transactional file that fails leaves the recorded state as it was; any other
        file that fails leaves ``target`` recorded dirty (and its error names the INVALID
        indexes a failed CREATE INDEX CONCURRENTLY left). ``progress`` hears, while a long
        statement runs, what the server's progress views say of it, and None when it ends.
        """

    def dry_run(self, files: list[tuple[str, SqlFile | None]]) -> list[DryRunRow]:
        """Run ``files`` in one transaction that is always rolled back; report each."""


class Inspector(Protocol):
    def invalid_indexes(self, sqlfile: SqlFile) -> tuple[InvalidIndex, ...]:
        """The INVALID indexes that ``sqlfile``'s CREATE INDEX CONCURRENTLY statements left, now."""

    def largest_tables(self, limit: int) -> list[TableRows]:
        """The ``limit`` largest tables by size on disk, with exact row counts."""

    def holds_tables(self, besides: tuple[str, str]) -> bool:
        """Whether the database has any table other than ``besides`` (schema, name)."""

    def foreign_key_orphans(self) -> list[OrphanCount]:
        """For every foreign key in the database, the rows that violate it (0 included)."""

    def table_bytes(self, tables: list[str]) -> dict[str, int]:
        """pg_total_relation_size of each of ``tables`` (names as SQL writes them, resolved on
        the search path) that exists now; a name that is not an existing table is left out."""

    def live_objects(self, tables: list[str]) -> LiveObjects:
        """Which of ``tables`` (names as SQL writes them) exist now and which hold rows: one
        catalog query, then an exact, cheap ``EXISTS`` per existing table (a bounded number)."""


class SqlLinter(Protocol):
    def lint(self, files: Sequence[tuple[Path, bool]], *, exclude: tuple[str, ...] = ()) -> list[list[Finding]]:
        """Findings on each SQL file of ``files`` (path, and whether dbops wraps it in a
        transaction), in order: lines 1-based, ``filename`` the file's name, rules in
        ``exclude`` left out. Never raises: a linter that cannot run returns one finding per
        file saying so."""


class Leftovers(Protocol):
    """What a failed migration left behind that can go without data loss: an index, an empty table."""

    def statement(self, kind: str, schema: str, name: str) -> str:
        """The DROP that removes it, as it will run (identifiers quoted)."""

    def drop(self, kind: str, schema: str, name: str) -> None:
        """Run that DROP (an index concurrently, outside any transaction; a table only while it
        is still empty, else CommandError and nothing dropped)."""


class LockWatch(Protocol):
    """One attempt's watch of the operation's session for lock waits (entered as a context manager)."""

    def latest(self) -> tuple[str, bool, tuple[Blocker, ...]] | None:
        """The last wait seen in this attempt: what it waited for, whether that was a table lock
        (so nothing of the statement ran yet), and who blocked it; None if none was seen."""


class Blockers(Protocol):
    """The sessions in a migration's way, and the one safe way to signal one."""

    def watch(self, on_wait: Callable[[str, tuple[Blocker, ...]], None]) -> AbstractContextManager[LockWatch]:
        """A watch of this operation's session for one attempt; ``on_wait`` hears its first wait."""

    def on_tables(self, wanted: Sequence[tuple[str, str]]) -> tuple[Blocker, ...]:
        """Other sessions holding or waiting for locks that conflict with ``wanted`` ((table, mode))."""

    def session(self, pid: int) -> Blocker | None:
        """Session ``pid`` as it is now; None when there is none."""

    def powers(self) -> tuple[str, bool, bool]:
        """dbops' role: its name, whether it is a superuser, whether it may signal other roles' sessions."""

    def signal(self, pid: int, session_start: datetime, *, terminate: bool) -> bool:
        """Cancel its query (or end it) only if ``pid`` is still the session started at ``session_start``."""


class EnvironmentDatabase(Protocol):
    store: VersionStore
    lock: MigrationLock
    runner: MigrationRunner
    inspector: Inspector
    leftovers: Leftovers
    blockers: Blockers


class Snapshotter(Protocol):
    def create(self, env: EnvironmentSettings, *, reason: str, actor: str, state: State,
               progress: Callable[[int, int, int], None] | None = None) -> Created:
        """Write a complete, checksummed snapshot of ``env``'s database, or raise
        SnapshotFailed leaving nothing behind. ``state`` is recorded in its name and manifest.
        ``progress(read, written, database_size)`` is called as the dump streams."""

    def verify(self, env: EnvironmentSettings, snapshot: Snapshot) -> Verified:
        """Check the file against its manifest's checksum and that pg_restore can read it."""

    def restore(self, env: EnvironmentSettings, snapshot: Snapshot,
                progress: Callable[[StatementProgress | None], None] | None = None) -> Restored:
        """Replace the database with the snapshot atomically: all of it, or nothing changes.
        Raises SnapshotFailed (the database untouched) otherwise. ``progress`` hears what the
        server's progress views say of the restore's long statements (index builds, COPY)."""


class Scratch(Protocol):
    def live(self) -> Schema:
        """The environment's database's schema, read once: no lock, nothing written."""

    def build(self, files: Sequence[tuple[int, str, SqlFile | None]]) -> tuple[Schema, str]:
        """The schema of an empty scratch database after ``files`` (version, label, parsed up
        file or None: a no-op step) were applied in order by the runner ``up`` uses, and where
        it was built. The scratch database is dropped, also when this raises (CommandError:
        a file failed, or no scratch database could be made)."""

    def database(self) -> AbstractContextManager[ScratchDatabase]:
        """An empty scratch database where ``build`` would make one, for the body of a ``with``;
        dropped on exit, also when the body raises (DatabaseError when none can be made)."""


@dataclass(frozen=True, kw_only=True)
class ScratchDatabase:
    url: str    # holds the server's credentials: never shown
    where: str  # the configured scratch server, the managed server, or embedded PostgreSQL
    place: str  # where, as messages say it (a configured server's URL masked)


class DrillLog(Protocol):
    """Restore drills kept in the control database."""

    def record(self, drill: DrillRecord) -> None:
        """Keep one drill's outcome (raises DatabaseError when the control database cannot take it)."""

    def latest(self, env: str) -> dict[str, DrillRecord]:
        """The last drill of each of ``env``'s snapshots that was drilled, by snapshot name."""

    def last(self, env: str, *, passed: bool | None = None) -> DrillRecord | None:
        """``env``'s newest drill (only passed or failed ones when ``passed`` says so), or None."""


class SchemaCache(Protocol):
    def get(self, files_sha256: str) -> tuple[Schema, str] | None:
        """The schema built from the files with this digest and where it was built, or None.
        A hit is counted in the control database."""

    def put(self, files_sha256: str, version: int, schema: Schema, built_on: str) -> None:
        """Keep ``schema`` as the one built from these files (a concurrent put of the same is a no-op)."""


class Databases(Protocol):
    def open(self, env: EnvironmentSettings) -> AbstractContextManager[EnvironmentDatabase]:
        """A connection to ``env``'s database for one operation, closed on exit."""

    def scratch(self, env: EnvironmentSettings) -> Scratch:
        """Reads ``env``'s schema and builds expected ones in a scratch database."""

    def schema_cache(self, control_url: str) -> SchemaCache:
        """Expected schemas kept in the control database at ``control_url``."""

    def drills(self, control_url: str) -> DrillLog:
        """Restore drills kept in the control database at ``control_url``."""

    def changed_rows(self, env: EnvironmentSettings) -> ChangedRows:
        """Finds, exports and re-imports the rows of ``env``'s database written since a snapshot."""


class BundleSink(Protocol):
    """Where an export writes: each table's header, then its rows' CSV in pieces, then its count."""

    def table(self, header: dict) -> None: ...
    def rows(self, data: bytes) -> None: ...
    def end(self, rows: int) -> None: ...


class ChangedRows(Protocol):
    def estimates(self) -> dict[str, int | None]:
        """Every user table's row estimate (schema.name -> rows; None: never analysed)."""

    def measure(self, since: datetime, configured: Mapping[str, tuple[str, ...]], exclude: tuple[str, ...],
                recorded: Mapping[str, int | None] | None) -> LossEstimate:
        """Per table, the rows whose time columns (``configured`` per table, else by convention)
        are newer than ``since``, counted read-only and each within a time limit; and the tables
        without such columns whose row estimate differs from ``recorded`` (None: unknown)."""

    def export(self, since: datetime, configured: Mapping[str, tuple[str, ...]], exclude: tuple[str, ...],
               sink: BundleSink) -> None:
        """Stream those rows into ``sink`` from one consistent, read-only view."""

    def reimport(self, tables: Iterable[tuple[dict, Iterator[bytes]]]) -> list[TableReimport]:
        """Put each table's rows back in a transaction of its own, skipping those whose key is
        already there and every row of a table that no longer fits them."""


class AuditLog(Protocol):
    def check(self) -> None:
        """Return when a record could be written now; raise DatabaseUnreachable (naming the
        control database) when it cannot be reached, DatabaseError when it cannot be used."""

    def record(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the audit log in the control database."""

    def latest(self, environment: str | None, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first; for one environment, or all (None)."""

    def record_file(self, entry: AppliedFile) -> None:
        """Record a migration file applied or reverted, as soon as it committed."""

    def applied_files(self, environment: str) -> dict[int, AppliedFile]:
        """Each version's newest record in ``environment``: applied as recorded when its
        direction is "up"."""

    def file_history(self, environment: str | None, limit: int) -> list[AppliedFile]:
        """The newest ``limit`` file records, newest first; for one environment, or all (None)."""


class Operations(Protocol):
    """Operations running now, in the control database, kept alive by a heartbeat."""

    def start(self, *, environment: str | None, command: str, actor: str, channel: str | None,
              message_ts: str | None, owner: str) -> int:
        """Record a running operation of process ``owner``; return its id."""

    def record_step(self, operation_id: int, step: str) -> None:
        """Note the step it is at, so an interruption can say where it stopped."""

    def beat(self, owner: str) -> None:
        """Refresh the heartbeat of every running operation of ``owner``."""

    def finish(self, operation_id: int, outcome: str) -> None:
        """Mark it finished with ``outcome`` (an Outcome value, or "error")."""

    def reap(self, stale_after_seconds: float) -> list[OperationRecord]:
        """Mark interrupted every running operation whose heartbeat is older than
        ``stale_after_seconds`` and return them. Each is returned to exactly one caller, even
        when several processes reap at once, so each is reported once."""


class Approvals(Protocol):
    """The approval requests, in the control database. Every state change is conditional on
    the state it leaves, so concurrent callers (double clicks, two approvers, two replicas)
    never both move the same request.

    Time is the control database's: a request's ``created_at`` and ``expires_at`` are its
    ``now()``, and whether a request has expired is decided by its ``now()`` at the moment of
    the change, never by the clock of the replica asking (replicas' clocks drift apart)."""

    def create(self, request: ApprovalRequest, command_args: dict) -> ApprovalRequest:
        """Store a new pending request with the encoded command it would run; the request as
        stored. ``request.expires_at - request.created_at`` is its time to live: the stored
        ``created_at`` is the control database's ``now()`` and ``expires_at`` that plus the
        time to live, whatever the caller's clock says."""

    def get(self, request_id: str) -> tuple[ApprovalRequest, dict] | None:
        """The request and its encoded command, or None."""

    def transition(self, request_id: str, *, from_state: str, to_state: str, actor: str | None = None,
                   reason: str | None = None, outcome: str | None = None) -> ApprovalRequest | None:
        """Move the request from ``from_state`` to ``to_state`` if it is still in
        ``from_state``; the updated request, or None when someone else moved it first.
        Leaving ``pending`` is conditional on the control database's clock too: an answer
        (``executing``, ``denied``) only before ``expires_at``, ``expired`` only from then on;
        otherwise None, and the request stays as it was."""

    def attach_message(self, request_id: str, message_ts: str) -> None:
        """Remember the channel message that shows the request (its card)."""

    def pending(self, environment: str | None) -> list[ApprovalRequest]:
        """Pending requests not yet past ``expires_at`` by the control database's clock, oldest
        first; for one environment, or all (None)."""

    def expire_due(self, environment: str | None) -> list[ApprovalRequest]:
        """Move every pending request past ``expires_at`` by the control database's clock to
        ``expired`` (for one environment, or all); those this call moved, oldest first. Of
        concurrent callers, each request is returned to one."""


class RollbackLog(Protocol):
    def record(self, result: RollbackResult) -> None:
        """Append a finished rollback (reason, people, method, versions, checks) to the log, with
        what the application's hooks were called with and answered (never their headers, and
        their URLs as shown: password masked, query cut)."""


class Alerts(Protocol):
    """Watchers' alerts in the control database. Opening, reminding and resolving are each
    conditional, so several replicas watching one database raise each message once."""

    def open_alert(self, env: str, subject: str) -> Alert | None:
        """The environment's unresolved alert about ``subject``, if any."""

    def raise_alert(self, alert: Alert) -> Alert | None:
        """Store a new open alert; None when one about the same subject is already open."""

    def remind(self, alert_id: int, *, last_notified: datetime, now: datetime) -> Alert | None:
        """Record a reminder if nobody reminded since ``last_notified``; None otherwise."""

    def resolve(self, alert_id: int, *, now: datetime, resolved_by: str | None,
                resolved_with: str | None) -> Alert | None:
        """Close the alert if it is still open (with who fixed it and how, when dbops knows);
        None when another caller closed it."""

    def attach_message(self, alert_id: int, channel: str, message_ts: str) -> None:
        """Remember the channel message that shows the alert (replies go in its thread)."""
