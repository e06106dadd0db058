"""Connections to managed databases, with errors turned into DatabaseError (password masked)."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from commands.errors import DatabaseError
from commands.redact import mask_url, redact

CONNECT_TIMEOUT_SECONDS = 10


def describe(err: psycopg.Error) -> str:
    """PostgreSQL's own words for ``err``, masked, on one line."""
    diag = getattr(err, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return redact((primary or str(err)).strip().splitlines()[0] if (primary or str(err)).strip() else type(err).__name__)


def connect(url: str, *, application_name: str = "dbops") -> psycopg.Connection:
    """An autocommit connection: dbops opens every transaction it needs explicitly."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name=application_name)
    except psycopg.Error as err:
        raise DatabaseError(f"Cannot connect to {mask_url(url)}: {describe(err)}") from None


def run_once(url: str, query: str, params: dict, *, application_name: str, failure: str,
             as_dicts: bool = False) -> list:
    """One statement on a connection of its own (the control database's stores: short and
    independent); its rows, or [] when it returns none. A PostgreSQL error becomes
    DatabaseError("{failure}: …") with PostgreSQL's words, masked."""
    try:
        with connect(url, application_name=application_name) as conn:
            cursor = conn.cursor(row_factory=dict_row) if as_dicts else conn.cursor()
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as err:
        raise DatabaseError(f"{failure}: {describe(err)}") from None
