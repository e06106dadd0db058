"""Connections to PostgreSQL, with errors turned into DatabaseError (password masked) whose
message starts with the database it was about: "control database: …" or "environment NAME: …".

Managed databases get a connection of their own per operation. The control database gets
pooled ones: its stores run a few short statements per command, and a new session costs
PostgreSQL a backend start (about 1.7 ms and as much server CPU here, a third of the bot's
load under a burst of commands), where a pooled one costs a round trip.
"""

from __future__ import annotations

import atexit
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import dict_row

from commands.errors import DatabaseError, DatabaseUnreachable
from commands.redact import mask_url, redact

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

CONNECT_TIMEOUT_SECONDS = 10
# A process talks to one control database; more than this many pools means databases that
# came and went (tests, a changed configuration): the least recently used is closed.
MAX_POOLS = 4
POOL_SIZE = 8               # the bot's 32 workers mostly wait on the managed databases
POOL_IDLE_SECONDS = 60      # idle sessions are closed: none is held open while nothing happens
POOL_WAIT_SECONDS = 1       # then a connection of its own, whose error (if any) says why
CONTROL = "control database"
# The session is gone, not a statement refused: connection exceptions, and the server shutting
# down or ending this session (an OperationalError without a SQLSTATE was raised by libpq).
_LOST = ("57P01", "57P02", "57P03")


def environment(name: str) -> str:
    """How errors name a managed database: "environment production"."""
    return f"environment {name}"


def connection_lost(err: psycopg.Error) -> bool:
    """Whether ``err`` says the session is gone (the server stopped, the network broke) rather
    than that a statement failed (a timeout, a lock not available)."""
    state = getattr(err, "sqlstate", None)
    return isinstance(err, psycopg.OperationalError) and (state is None or state.startswith("08") or state in _LOST)


def describe(err: psycopg.Error) -> str:
    """PostgreSQL's own words for ``err``, masked, on one line."""
    diag = getattr(err, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return redact((primary or str(err)).strip().splitlines()[0] if (primary or str(err)).strip() else type(err).__name__)


def connect(url: str, *, database: str, application_name: str = "dbops") -> psycopg.Connection:
    """An autocommit connection: dbops opens every transaction it needs explicitly. ``database``
    names it in the error when there is none: ``CONTROL`` or ``environment(name)``."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name=application_name)
    except psycopg.Error as err:
        raise DatabaseUnreachable(f"{database}: could not connect to {mask_url(url)}: {describe(err)}",
                                  database=database) from None


def control_error(failure: str, err: psycopg.Error) -> DatabaseError:
    """``err``, met while ``failure`` ("could not write the audit log"), as the fault to raise:
    DatabaseUnreachable when the session was lost, with PostgreSQL's words, masked."""
    if connection_lost(err):
        return DatabaseUnreachable(f"{CONTROL}: {failure}: the connection was lost: {describe(err)}", database=CONTROL)
    return DatabaseError(f"{CONTROL}: {failure}: {describe(err)}")


def run_once(url: str, query: str, params: dict, *, failure: str, as_dicts: bool = False,
             pooled: bool = True) -> list:
    """One statement on a control-database session (the control database's stores: short and
    independent; pooled unless ``pooled`` is False); its rows, or [] when it returns none. A
    PostgreSQL error becomes DatabaseError("control database: {failure}: …") with PostgreSQL's
    words, masked."""
    try:
        with control_connection(url, pooled=pooled) as conn:
            cursor = conn.cursor(row_factory=dict_row) if as_dicts else conn.cursor()
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as err:
        raise control_error(failure, err) from None


_pools: OrderedDict[str, ConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()


def _pool(url: str) -> ConnectionPool:
    from psycopg_pool import ConnectionPool  # the bot's; a command line often needs none
    with _pools_lock:
        pool = _pools.get(url)
        if pool is not None:
            _pools.move_to_end(url)
            return pool
        # min_size 0: sessions are opened on demand and closed when idle, never re-opened in
        # the background, so a control database that goes away leaves no retrying threads.
        pool = ConnectionPool(url, min_size=0, max_size=POOL_SIZE, max_idle=POOL_IDLE_SECONDS, num_workers=1,
                              timeout=POOL_WAIT_SECONDS, check=ConnectionPool.check_connection, open=True,
                              name="dbops-control",
                              kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                                      "application_name": "dbops-control"})
        _pools[url] = pool
        retired = _pools.popitem(last=False)[1] if len(_pools) > MAX_POOLS else None
    if retired is not None:
        retired.close(timeout=1)
    return pool


@atexit.register
def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close(timeout=1)


@contextmanager
def control_connection(url: str, *, pooled: bool = True) -> Iterator[psycopg.Connection]:
    """An autocommit session on the control database, from this process's pool for it
    (checked before use, so one a restart broke is replaced). When the pool cannot supply
    one in time, or ``pooled`` is False (a process that runs one command: a pool's threads
    would outlive their use), a connection of its own: it works, or its error says what is wrong."""
    if not pooled:
        with connect(url, database=CONTROL, application_name="dbops-control") as conn:
            yield conn
        return
    from psycopg_pool import PoolTimeout
    pool = _pool(url)
    try:
        conn = pool.getconn()
    except PoolTimeout:
        with connect(url, database=CONTROL, application_name="dbops-control") as conn:
            yield conn
        return
    try:
        yield conn
    finally:
        pool.putconn(conn)  # rolled back if left in a transaction, discarded if broken
