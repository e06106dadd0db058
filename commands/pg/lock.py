"""The migration lock, shared with golang-migrate's ``migrate`` CLI.

The CLI takes ``pg_advisory_lock(key)`` where ``key`` is
``crc32_ieee(schema + "\\0" + table + "\\0" + dbname) * 1486364155 mod 2**32`` and
``dbname`` is the database URL's path, leading slash included. Taking the same key makes a
deploy script's ``migrate up`` and dbops wait for each other instead of racing.
"""

from __future__ import annotations

import zlib
from urllib.parse import urlsplit

import psycopg

from commands.results import LockHolder

ADVISORY_LOCK_SALT = 1486364155


def golang_migrate_lock_key(*, schema: str, table: str, database_url: str) -> int:
    dbname = urlsplit(database_url).path
    joined = "\x00".join((schema, table, dbname)).encode()
    return (zlib.crc32(joined) * ADVISORY_LOCK_SALT) % 2**32


_HOLDER = """
SELECT a.pid, coalesce(a.application_name, ''), a.client_addr::text, coalesce(a.usename, ''),
       a.backend_start, a.state, a.state_change,
       -- PostgreSQL shows another role's state, client and start only to pg_read_all_stats
       coalesce(NOT (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')), false),
       coalesce(pg_has_role(a.usesysid, 'USAGE'), true)
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s AND l.objsubid = 1
  AND l.pid <> pg_backend_pid()
LIMIT 1
"""


class PgAdvisoryLock:
    """A session-level advisory lock on the connection it is given.

    Contract:
    - ``acquire(wait_seconds)`` returns None once the lock is held, or the holder if it could
      not be had within ``wait_seconds`` (PostgreSQL's lock_timeout applies to advisory
      locks, so the wait happens in the server, not in a polling loop);
    - ``release()`` unlocks; closing the connection also releases it, so a killed process
      never leaves the lock behind;
    - ``holder()`` reports who holds it now, or None.
    """

    def __init__(self, conn: psycopg.Connection, key: int) -> None:
        self.conn = conn
        self.key = key
        self.held = False

    def acquire(self, wait_seconds: float) -> LockHolder | None:
        timeout = f"{max(1, int(wait_seconds * 1000))}ms"
        for _ in range(2):  # a second try when the holder left between our timeout and the look-up
            try:
                with self.conn.transaction():
                    self.conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
                    self.conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            except psycopg.errors.LockNotAvailable:
                holder = self.holder()
                if holder is not None:
                    return holder
                continue
            self.held = True
            return None
        return LockHolder(pid=0, application_name="", client="unknown", user="", since=None, state=None)

    def release(self) -> None:
        try:
            if self.held and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.OperationalError:
            pass  # the session is gone, and its lock with it
        finally:
            self.held = False

    def holder(self) -> LockHolder | None:
        row = self.conn.execute(_HOLDER, {"high": self.key >> 32, "low": self.key & 0xFFFFFFFF}).fetchone()
        if row is None:
            return None
        pid, app, addr, user, since, state, state_since, hidden, own = row
        return LockHolder(pid=pid, application_name=app, client="unknown" if hidden else addr or "local socket",
                          user=user, since=since, state=state, state_since=state_since, hidden=hidden, own=own)

    def terminate_idle(self, pid: int, idle_seconds: float) -> bool:
        """End session ``pid`` if it still holds this lock and has been idle (or idle in a
        transaction) for at least ``idle_seconds``; True once it is gone. The check and the
        termination are one statement, so a session that just started a migration is spared."""
        wait = ", 5000" if self.conn.info.server_version >= 140000 else ""  # 14+: wait until it has exited
        row = self.conn.execute(
            f"""SELECT pg_terminate_backend(a.pid{wait}) FROM pg_stat_activity a
                WHERE a.pid = %(pid)s AND a.state IN ('idle', 'idle in transaction')
                  AND a.state_change <= now() - make_interval(secs => %(idle)s)
                  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
                              AND l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s AND l.objsubid = 1)""",
            {"pid": pid, "idle": idle_seconds, "high": self.key >> 32, "low": self.key & 0xFFFFFFFF}).fetchone()
        return bool(row and row[0])
