"""The migrations health check, per environment, in the shape the troubleshooting guide shows:

    {"status": "pass", "message": "Migrations applied successfully (version 5)",
     "latency_ms": 12, "details": {"version": 5, "dirty": false, "pending": 0}}

It fails when the database cannot be read, is dirty, or is at a version no file has. Pending
migrations alone do not fail it: they are the normal state between a deploy and its migrate.
Health checks are polled often, so they read only; they are not commands and not audited.

Its JSON is served without authentication, so a fault is reported by kind only ("database
unreachable"): the fault's own message names the user, host, port and database, and is kept
in ``reason`` for the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from commands.config import EnvironmentSettings
from commands.errors import CommandError, DatabaseError, SourceError, VersionTableError
from commands.migrations import Databases
from commands.source import NIL_VERSION, load_source

DATABASE_UNREACHABLE = "database unreachable"
FAULTS = {SourceError: "migration files unreadable", DatabaseError: DATABASE_UNREACHABLE,
          VersionTableError: "version table has more than one row"}


@dataclass(frozen=True, kw_only=True)
class MigrationsCheck:
    env: str
    passed: bool
    message: str
    latency_ms: float
    version: int | None = None
    dirty: bool | None = None
    pending: int | None = None
    reason: str | None = None  # why the check could not run (masked); for the log, never the JSON

    def as_json(self) -> dict:
        return {"status": "pass" if self.passed else "fail", "message": self.message,
                "latency_ms": round(self.latency_ms), "details": {"version": self.version, "dirty": self.dirty,
                                                                  "pending": self.pending}}


def check_migrations(env: EnvironmentSettings, databases: Databases) -> MigrationsCheck:
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        source = load_source(env.migrations_dir)
        with databases.open(env) as db:
            state = db.store.read()
    except CommandError as err:
        kind = next((text for fault, text in FAULTS.items() if isinstance(err, fault)), "check failed")
        return MigrationsCheck(env=env.name, passed=False, message=kind, reason=err.message, latency_ms=elapsed())
    version = None if state.version == NIL_VERSION else state.version
    pending = sum(1 for m in source.migrations if state.version == NIL_VERSION or m.version > state.version)
    facts = dict(env=env.name, version=version, dirty=state.dirty, pending=pending)
    if state.dirty:
        return MigrationsCheck(passed=False, latency_ms=elapsed(), **facts,
                               message=f"Migration {state.version} failed and left the database dirty")
    if version is not None and source.get(version) is None:
        return MigrationsCheck(passed=False, latency_ms=elapsed(), **facts,
                               message=f"Database is at version {version}, which no migration file has")
    applied = "No migrations applied" if version is None else f"Migrations applied successfully (version {version})"
    waiting = f"; {pending} pending" if pending else ""
    return MigrationsCheck(passed=True, latency_ms=elapsed(), message=applied + waiting, **facts)
