"""The names a new-database restore gives the databases beside its target, and finding the
ones a killed restore left behind.

A restore loads ``<target>_restoring_<stamp>`` and, once it is complete, renames the target
to ``<target>_before_restore_<stamp>`` (kept: it is the undo) and the fresh one to the
target. A restore killed before the swap (SIGKILL, a lost host) leaves its fresh database,
half-loaded and taking space, and nothing else ever drops it. Restores of one target run
one at a time under its migration lock, so the restore holding the lock knows that any
other ``_restoring_`` database of its target is abandoned.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import psycopg
import structlog
from psycopg import sql

from commands.errors import SnapshotFailed
from commands.pg.connect import describe

log = structlog.get_logger("dbops.restore")

NAME_LIMIT = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are cut there
_STAMP = r"\d{8}_\d{6}(?:_\d{1,2})?"  # a restore's UTC second, then a number for a second one in that second
_STAMP_SHAPE = "00000000_000000_00"


def free_names(admin: psycopg.Connection, target: str) -> tuple[str, str]:
    """Names for the fresh database and the kept one that no database has: restores within
    the same second (an undo right after a restore) get a number after the time."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    for n in range(1, 100):
        tag = stamp if n == 1 else f"{stamp}_{n}"
        fresh, kept = restoring_name(target, tag), f"{target}_before_restore_{tag}"[:NAME_LIMIT]
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname IN (%s, %s)", (fresh, kept)).fetchone():
            return fresh, kept
    raise SnapshotFailed(f"Could not find free names beside {target} for a restore; {target} is unchanged.")


def restoring_name(target: str, tag: str) -> str:
    return f"{target}_restoring_{tag}"[:NAME_LIMIT]


def is_restoring_name(name: str, target: str) -> bool:
    """Whether ``name`` is one ``restoring_name`` gives for ``target`` (whole, or cut at 63
    characters within the stamp): never a kept ``_before_restore_`` database, nor another
    target's, nor the target itself."""
    head = f"{target}_restoring_"
    if re.fullmatch(re.escape(head) + _STAMP, name):
        return True
    if len(name) != NAME_LIMIT or len(head) >= NAME_LIMIT or not name.startswith(head):
        return False  # past the limit, even the target itself would look like one: none is trusted
    # Cut short: what is left of the stamp has its shape, digit for digit.
    rest = name[len(head):]
    return re.sub(r"\d", "0", rest) == _STAMP_SHAPE[:len(rest)]


def abandoned_restores(conn: psycopg.Connection, target: str) -> list[str]:
    """The ``_restoring_`` databases of ``target`` on the server ``conn`` is connected to, by name."""
    rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
                        (f"{target}_restoring_"[:NAME_LIMIT],)).fetchall()
    return [name for (name,) in rows if is_restoring_name(name, target)]


def drop_abandoned_restores(admin: psycopg.Connection, target: str) -> tuple[str, ...]:
    """Drop what killed restores of ``target`` left; call only under its migration lock. A
    database that cannot be dropped (another role's) is left, logged, and does not stop the
    restore: ``/dbops doctor`` goes on naming it."""
    dropped = []
    for name in abandoned_restores(admin, target):
        try:
            # FORCE: a killed dbops's pg_restore jobs may still be loading it.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as err:
            log.warning("restore.abandoned_kept", database=name, error=describe(err))
            continue
        log.info("restore.abandoned_dropped", database=name)
        dropped.append(name)
    return tuple(dropped)
