"""A least-privilege application role, shaped like the one a managed PostgreSQL service gives an
application, on a fresh database of its own.

The role is not a superuser, has no CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, and is in
neither pg_signal_backend nor pg_read_all_stats. The database belongs to the superuser that
made it (so from PostgreSQL 15 schema ``public`` belongs to pg_database_owner, not to the
role); the role may use and create in ``public``, so what it creates (the version table, the
application's tables and sequences) it owns. It logs in with a password: on the test bed's
own server the password is checked (scram-sha-256); a server given by DBOPS_TEST_SERVER_URL
checks it as its pg_hba.conf says.

Use the ``app_role`` fixture (tests/conftest.py): ``make_bed(files, url=app_role.url)`` runs
dbops as the role, ``app_role.grant("ALTER ROLE {role} CREATEDB")`` changes what it may do
(as the superuser), ``app_role.admin(sql)`` sets things up as the superuser.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from commands.pg import embedded

# Members of this group log in with a password on the test bed's server; everyone else as before.
PASSWORD_GROUP = "dbops_password_login"
_HBA_LINES = (f"local all +{PASSWORD_GROUP} scram-sha-256\n"
              f"host all +{PASSWORD_GROUP} all scram-sha-256\n")


@dataclass(frozen=True)
class AppRole:
    name: str
    password: str
    database: str
    url: str        # the database, as the role, password included
    admin_url: str  # the same database, as the superuser that made it

    def admin(self, statements: str, params: object = None) -> list[tuple]:
        """Run SQL in the role's database as the superuser; the last statement's rows."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cursor = conn.execute(statements, params)
            return cursor.fetchall() if cursor.description else []

    def grant(self, template: str) -> None:
        """Give the role more, as the superuser: ``{role}`` and ``{database}`` in ``template``
        become their quoted identifiers (``"ALTER ROLE {role} CREATEDB"``)."""
        statement = sql.SQL(template).format(role=sql.Identifier(self.name), database=sql.Identifier(self.database))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)


def role_url(url: str, role: str, password: str) -> str:
    """``url`` with ``role`` and ``password`` as its user (whatever user it had)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"))


def require_passwords(server_url: str) -> None:
    """Make the test bed's own server check the passwords of PASSWORD_GROUP's members (once)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
                     .format(sql.Identifier(PASSWORD_GROUP)))
        if os.environ.get("DBOPS_TEST_SERVER_URL"):
            return  # not ours to reconfigure
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        text = hba.read_text()
        if _HBA_LINES not in text:
            hba.write_text(_HBA_LINES + text)  # first match wins: these go before the trust lines
            conn.execute("SELECT pg_reload_conf()")


@contextmanager
def app_role(server_url: str) -> Iterator[AppRole]:
    """A fresh least-privilege role and database (see the module docstring); both dropped after,
    with any database the role made meanwhile."""
    require_passwords(server_url)
    suffix = uuid.uuid4().hex[:12]
    name, database, password = f"app_{suffix}", f"t_app_{suffix}", secrets.token_urlsafe(18)
    with psycopg.connect(server_url, autocommit=True) as conn:
        # PostgreSQL 13 stores new passwords as md5 by default, which scram-sha-256 login refuses.
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                             "NOBYPASSRLS IN ROLE {}").format(sql.Identifier(name), sql.Literal(password),
                                                               sql.Identifier(PASSWORD_GROUP)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    admin_url = embedded.database_url(server_url, database)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(name)))
    try:
        yield AppRole(name=name, password=password, database=database, admin_url=admin_url,
                      url=role_url(admin_url, name, password))
    finally:
        _drop(server_url, name, database)


def _drop(server_url: str, name: str, database: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        made = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (name,)).fetchall()]
        for db in {database, *made}:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        # What a test granted it elsewhere (CONNECT on another database, say) goes first.
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
