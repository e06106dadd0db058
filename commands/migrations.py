"""The collaborators a migration operation needs, as small Protocols with their contracts.

The executor is written against these; ``commands.pg`` implements them with psycopg.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from commands.config import EnvironmentSettings
from commands.results import LockHolder, SqlError, State
from commands.sqlscan import SqlFile


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


DryRunRow = tuple[str, str, str | None, SqlError | None, float]


class MigrationRunner(Protocol):
    def apply(self, sqlfile: SqlFile | None, target: int) -> SqlError | None:
        """Run ``sqlfile`` (None: no-op) and record ``target`` clean; on error return it.

        A transactional file that fails leaves the recorded state as it was; any other
        file that fails leaves ``target`` recorded dirty.
        """

    def dry_run(self, files: list[tuple[str, SqlFile | None]]) -> list[DryRunRow]:
        """Run ``files`` in one transaction that is always rolled back; report each."""


class EnvironmentDatabase(Protocol):
    store: VersionStore
    lock: MigrationLock
    runner: MigrationRunner


class Databases(Protocol):
    def open(self, env: EnvironmentSettings) -> AbstractContextManager[EnvironmentDatabase]:
        """A connection to ``env``'s database for one operation, closed on exit."""
