"""Before a change: the sessions already in the way of what a migration will lock.

A long transaction, or a session ``idle in transaction``, holding a lock that conflicts with one
a pending statement takes, would make every try of that statement wait (and, while it waits,
queue the table's other queries behind it). ``up``, ``down`` and ``goto`` look for such sessions
before they take a snapshot or run anything; per environment (``blockers``) it waits for them to finish, for
``blocker_wait_seconds`` at most, or refuses at once, naming them (Reason.BLOCKED). A session
whose transaction is younger than ``lock_timeout`` is not counted: one try outwaits it.
"""

from __future__ import annotations

import time
from typing import Sequence

import structlog

from commands.config import EnvironmentSettings
from commands.config_values import duration_seconds
from commands.context import Context
from commands.migrations import EnvironmentDatabase
from commands.results import Progress, Reason, Refusal, State
from commands.sessions import Blocker, LockWait
from commands.sql.sqlfile import SqlFile

log = structlog.get_logger("dbops.blockers")
POLL_SECONDS = 0.5
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")


def wanted(files: Sequence[SqlFile | None]) -> list[tuple[str, str]]:
    """(table, lock) of every statement of ``files`` on a table that exists before them."""
    from commands.sql.sqllocks import table_locks  # PostgreSQL's parser: only for what changes a database
    found: dict[tuple[str, str], None] = {}
    for sqlfile in files:
        if sqlfile is not None and sqlfile.syntax_error is None:
            found |= {(table, lock): None for _, table, lock, _ in table_locks(sqlfile)}
    return list(found)


def in_the_way(blockers: Sequence[Blocker], lock_timeout: str) -> tuple[Blocker, ...]:
    """The ``blockers`` a try within ``lock_timeout`` would not outwait."""
    limit = duration_seconds(lock_timeout)
    return tuple(b for b in blockers if b.state in IDLE_IN_TRANSACTION or limit == 0
                 or (b.xact_seconds is not None and b.xact_seconds >= limit))


def check(ctx: Context, db: EnvironmentDatabase, env: EnvironmentSettings, files: Sequence[SqlFile | None],
          operation: str, state: State) -> Refusal | None:
    """None once nothing is in the way (at once, or after waiting); else the BLOCKED refusal."""
    tables = wanted(files) if env.blockers != "off" else []
    if not tables:
        return None
    deadline = time.monotonic() + (env.blocker_wait_seconds if env.blockers == "wait" else 0)
    while True:
        found = in_the_way(db.blockers.on_tables(tables), env.lock_timeout)
        if not found:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            log.warning("migration.blocked", pids=[b.pid for b in found], waited=env.blockers == "wait")
            return Refusal(env=env.name, operation=operation, reason=Reason.BLOCKED, state=state, blockers=found,
                           detail=env.blockers)
        ctx.progress(Progress(step="blockers", lock_wait=LockWait(waited_for=None, blockers=found, attempts=0,
                                                                  retries=0, next_in_s=left)))
        time.sleep(min(POLL_SECONDS, left))
