"""What a live database shows of the sessions and statements around a migration: who blocks it
and what it waits for, what a long statement is doing (PostgreSQL's progress views), and the
INVALID index a failed concurrent build left. Loaded by the operations that look, not by a
status: ``commands.results`` names these types for type checking only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class StatementProgress:
    """A long statement of a migration file as PostgreSQL's progress views show it, sampled
    from a second session of the same role while it runs.

    ``seen``: "reported" (a progress view has its row: ``phase`` and, where the phase counts
    something, ``done`` of ``total`` ``unit``), "no_view" (PostgreSQL has no progress view for
    ``statement`` on this server: only how long it has run is known), "hidden" (a view has its
    row but dbops' role may not read it) or "waiting" (a view covers it but has no row yet).
    """

    statement: str                 # what runs: "CREATE INDEX CONCURRENTLY", "ALTER TABLE", "The whole file"
    line: int | None = None        # its line in the file; None: a file sent whole, with several statements
    seconds: float = 0.0           # how long it has run so far
    seen: str = "reported"
    command: str | None = None     # the view's own name for it ("CREATE INDEX CONCURRENTLY", "VACUUM FULL")
    relation: str | None = None    # the table it works on
    phase: str | None = None       # PostgreSQL's words: "building index: scanning table"
    done: int | None = None
    total: int | None = None
    unit: str | None = None        # "blocks", "tuples", "bytes", "transactions", "partitions"
    waiting_for: int | None = None  # the pid of the transaction a waiting phase waits for
    server_version: int | None = None  # server_version_num, for "no_view" on an older server


@dataclass(frozen=True, kw_only=True)
class Blocker:
    """A session holding a lock a migration needs (or waiting for one ahead of it).

    ``pid`` with ``session_start`` (its backend_start) names the session: a pid is reused by the
    next connection, so nothing is ever signalled by pid alone. ``query``: its current (or
    last, when idle) statement trimmed to a few hundred characters, literals and all, so it is
    shown as the database shows it and said to be trimmed; None when PostgreSQL hides another
    role's (``hidden``)."""

    pid: int
    session_start: datetime | None
    application_name: str
    client: str
    user: str
    state: str | None
    xact_start: datetime | None = None
    state_since: datetime | None = None
    xact_seconds: float | None = None   # how long its transaction has been open, by the server's clock
    state_seconds: float | None = None  # how long it has been in ``state``
    query: str | None = None
    query_trimmed: bool = False
    lock: str | None = None       # the mode it holds (or waits for), as pg_locks names it: "AccessShareLock"
    relation: str | None = None   # the table it is held on
    waiting: bool = False         # it waits for a lock itself
    superuser: bool = False       # a superuser's session: only a superuser may signal it
    own: bool = False             # a session of dbops' role (or one it has the privileges of): it may signal it
    hidden: bool = False


@dataclass(frozen=True, kw_only=True)
class LockWait:
    """A migration file's waits for a lock: what it waited for, who held it (as last seen), and
    how many times it was tried (``attempts``) of the ``retries`` + 1 allowed."""

    waited_for: str | None       # "AccessExclusiveLock on public.users"; None: not seen in time
    blockers: tuple[Blocker, ...]
    attempts: int
    retries: int
    next_in_s: float | None = None  # the next try, this many seconds from now (progress only)


@dataclass(frozen=True, kw_only=True)
class InvalidIndex:
    """An index PostgreSQL marked INVALID (``pg_index.indisvalid`` false) that a failed file was
    building: no query uses it, yet every write to ``table`` still maintains it."""

    schema: str
    name: str
    table: str  # schema-qualified
