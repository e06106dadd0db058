"""Who blocks a migration: the sessions holding the locks its statements need, found in
``pg_locks`` and ``pg_stat_activity``, and the one safe way to signal one of them.

- ``PgLockWatch`` watches the migration's own session from a second connection while a file
  runs: when that session waits for a lock, ``pg_blocking_pids`` names who it waits for (the
  holders, and the sessions queued ahead of it);
- ``PgBlockers.on_tables`` finds, before a change, the sessions holding or waiting for locks
  that conflict with the ones a plan's statements take;
- ``PgBlockers.signal`` cancels a session's query or ends it, only if the pid still belongs to
  the same session (its backend_start): pids are reused, and a new connection must never pay
  for an old one.

The query text of a session is trimmed to ``QUERY_CHARS`` and may hold literals (PostgreSQL
keeps them in ``pg_stat_activity``); another role's is hidden unless dbops' role is a member of
``pg_read_all_stats``, and is then reported hidden, not empty.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Callable, Iterator, Sequence

import psycopg
from psycopg import sql
import structlog

from commands.errors import CommandError
from commands.pg.connect import connect, describe
from commands.sessions import Blocker

log = structlog.get_logger("dbops.blockers")

QUERY_CHARS = 300
POLL_SECONDS = 0.05
HIDDEN_QUERY = "<insufficient privilege>"

# PostgreSQL's table-level lock modes (pg_locks' names) and which modes each conflicts with
# ("Conflicting Lock Modes" in the manual).
MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
         "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
_CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
    "ShareUpdateExclusiveLock": {"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
                                 "AccessExclusiveLock"},
    "ShareLock": {"RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareRowExclusiveLock", "ExclusiveLock",
                  "AccessExclusiveLock"},
    "ShareRowExclusiveLock": {"RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                              "ExclusiveLock", "AccessExclusiveLock"},
    "ExclusiveLock": set(MODES) - {"AccessShareLock"},
    "AccessExclusiveLock": set(MODES),
}


def mode_of(words: str) -> str:
    """"ACCESS EXCLUSIVE" (the manual's and the linter's words) as pg_locks names it."""
    return "".join(w.capitalize() for w in words.split()) + "Lock"


def conflicts(wanted: str, held: str) -> bool:
    return held in _CONFLICTS.get(wanted, set(MODES))


_SESSIONS = """
SELECT a.pid, a.backend_start, coalesce(a.application_name, ''), a.client_addr::text, coalesce(a.usename, ''),
       a.state, a.xact_start, a.state_change, extract(epoch FROM now() - a.xact_start)::float8,
       extract(epoch FROM now() - a.state_change)::float8, left(a.query, %(chars)s), length(a.query) > %(chars)s,
       -- PostgreSQL shows another role's state, query and client only to pg_read_all_stats
       coalesce(NOT (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')), false),
       coalesce(r.rolsuper, false), coalesce(pg_has_role(a.usesysid, 'USAGE'), false),
       (SELECT l.mode FROM pg_locks l WHERE l.pid = a.pid AND l.relation = %(rel)s
        ORDER BY l.granted DESC LIMIT 1),
       (SELECT l.relation::regclass::text FROM pg_locks l WHERE l.pid = a.pid AND l.relation = %(rel)s LIMIT 1),
       EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = ANY(%(pids)s)
ORDER BY a.xact_start NULLS LAST, a.pid
"""


def sessions(conn: psycopg.Connection, pids: Sequence[int], relation: int | None = None) -> tuple[Blocker, ...]:
    """The sessions ``pids`` as they are now (those gone are left out); ``relation``: the table
    whose lock each holds is reported."""
    if not pids:
        return ()
    rows = conn.execute(_SESSIONS, {"pids": list(pids), "rel": relation, "chars": QUERY_CHARS}).fetchall()
    found = []
    for (pid, started, app, addr, user, state, xact, since, xact_s, state_s, query, trimmed, hidden, superuser, own,
         mode, rel, waiting) in rows:
        shown = None if hidden or query == HIDDEN_QUERY else query
        found.append(Blocker(pid=pid, session_start=started, application_name=app,
                             client="unknown" if hidden else addr or "local socket", user=user, state=state,
                             xact_start=xact, state_since=since, xact_seconds=xact_s, state_seconds=state_s,
                             query=shown, query_trimmed=bool(trimmed and shown),
                             lock=mode, relation=rel, waiting=waiting, superuser=superuser, own=own,
                             hidden=hidden))
    return tuple(found)


_WAITING = """
SELECT w.locktype, w.mode, w.relation, CASE WHEN w.relation IS NOT NULL THEN w.relation::regclass::text END,
       pg_blocking_pids(w.pid)
FROM pg_locks w WHERE w.pid = %s AND NOT w.granted LIMIT 1
"""


class PgLockWatch:
    """Watches session ``pid`` from a connection of its own, opened once per operation.

    Contract: ``watching(on_wait)`` is a context manager for one attempt's watch: inside it the
    session is polled, ``on_wait`` hears the attempt's first wait (from the watching thread), and
    ``latest()`` is the last wait seen since it was entered, as (what it waited for, whether that
    was a table lock, the blockers), or None. A failure of the watch (its connection refused or
    lost) is logged and only stops the watching: the migration goes on. ``stop()`` ends it.
    """

    def __init__(self, url: str, database: str, pid: int) -> None:
        self.url, self.database, self.pid = url, database, pid
        self._stop, self._active = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._latest: tuple[str, bool, tuple[Blocker, ...]] | None = None
        self._on_wait: Callable[[str, tuple[Blocker, ...]], None] | None = None
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def start(self) -> None:
        try:
            self._conn = connect(self.url, database=self.database, application_name="dbops lock watch")
        except CommandError as err:
            log.warning("lock_watch.unavailable", error=err.message)
            return
        self._thread = threading.Thread(target=self._run, name=f"lock-watch-{self.pid}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def watching(self, on_wait: Callable[[str, tuple[Blocker, ...]], None]) -> Iterator[PgLockWatch]:
        with self._lock:
            self._latest, self._on_wait = None, on_wait
        self._active.set()
        try:
            yield self
        finally:
            self._active.clear()
            with self._lock:
                self._on_wait = None

    def latest(self) -> tuple[str, bool, tuple[Blocker, ...]] | None:
        with self._lock:
            return self._latest

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._active.wait(0.2):
                continue
            try:
                self._look()
            except psycopg.Error as err:
                log.warning("lock_watch.failed", error=describe(err))
                return
            self._stop.wait(POLL_SECONDS)

    def _look(self) -> None:
        row = self._conn.execute(_WAITING, (self.pid,)).fetchone()
        if row is None or not row[4]:
            return
        locktype, mode, relation, name, pids = row
        what = f"{mode} on {name}" if name else f"{mode} on a {locktype}"
        found = sessions(self._conn, pids, relation)
        if not found:
            return
        with self._lock:
            if not self._active.is_set():
                return
            tell, self._latest = self._latest is None, (what, locktype == "relation", found)
            on_wait = self._on_wait
        if tell and on_wait is not None:
            on_wait(what, found)


_ON_TABLE = """
SELECT l.pid, l.mode, l.granted FROM pg_locks l
WHERE l.relation = to_regclass(%s) AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class PgBlockers:
    """The catalog look-ups and the signal, on the operation's connection."""

    def __init__(self, conn: psycopg.Connection, url: str, database: str) -> None:
        self.conn, self.url, self.database = conn, url, database
        self._watch: PgLockWatch | None = None

    def watch(self, on_wait: Callable[[str, tuple[Blocker, ...]], None]) -> AbstractContextManager[PgLockWatch]:
        """One attempt's watch; the watching connection is opened at the first, and kept for
        the operation (``close``)."""
        if self._watch is None:
            self._watch = PgLockWatch(self.url, self.database, self.conn.info.backend_pid)
            self._watch.start()
        return self._watch.watching(on_wait)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()

    def on_tables(self, wanted: Sequence[tuple[str, str]]) -> tuple[Blocker, ...]:
        """Sessions holding (or waiting for) a lock that conflicts with one of ``wanted``
        ((table, lock mode in the manual's words)); a table that does not exist yet is skipped."""
        found: dict[int, Blocker] = {}
        for table, words in wanted:
            try:
                rows = self.conn.execute(_ON_TABLE, (table,)).fetchall()
                relation = self.conn.execute("SELECT to_regclass(%s)::oid", (table,)).fetchone()[0]
            except psycopg.Error:  # a name the linter could not resolve ("table of index x"): nothing to look up
                continue
            pids = sorted({pid for pid, mode, _ in rows if conflicts(mode_of(words), mode)} - set(found))
            found |= {b.pid: b for b in sessions(self.conn, pids, relation)}
        return tuple(found.values())

    def session(self, pid: int) -> Blocker | None:
        found = sessions(self.conn, [pid])
        return found[0] if found else None

    def powers(self) -> tuple[str, bool, bool]:
        """dbops' role: its name, whether it is a superuser, and whether it has pg_signal_backend's privileges."""
        return self.conn.execute("SELECT current_user, rolsuper, pg_has_role('pg_signal_backend', 'USAGE') "
                                 "FROM pg_roles WHERE rolname = current_user").fetchone()

    def signal(self, pid: int, session_start: datetime, *, terminate: bool) -> bool:
        """Cancel the query of (or end) session ``pid`` only if it is still the session that started
        at ``session_start``: the check and the signal are one statement. True once sent (for an
        end on 14 and later: once the session is gone)."""
        if not terminate:
            call = sql.SQL("pg_cancel_backend(a.pid)")
        elif self.conn.info.server_version >= 140000:  # 14+: until it has exited
            call = sql.SQL("pg_terminate_backend(a.pid, 5000)")
        else:
            call = sql.SQL("pg_terminate_backend(a.pid)")
        query = sql.SQL("SELECT {} FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_start = %s").format(call)
        row = self.conn.execute(query, (pid, session_start)).fetchone()
        return bool(row and row[0])
