"""What ``/dbops doctor`` reads from the world, and the collaborators that read it.

The doctor's verdicts are worked out in ``commands.doctor.doctor`` from plain facts; these Protocols
say where the facts come from. ``commands.pg.privileges`` reads PostgreSQL's catalogs and the
client programs; the Slack surface supplies a SlackCheck (``auth.test``), so that nothing here
knows Slack. Every method only reads: the doctor changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from commands.config import EnvironmentSettings


@dataclass(frozen=True, kw_only=True)
class RoleFacts:
    """The connecting role, as the managed database's catalogs see it."""

    user: str
    superuser: bool
    createdb: bool
    bypassrls: bool
    owns_database: bool        # a member of the database's owner role
    database_owner: str
    create_on_database: bool   # CREATE on the database (to create a schema)
    signal_backend: bool       # a member of pg_signal_backend: may end other roles' sessions
    read_all_stats: bool       # a member of pg_read_all_stats: sees whether other roles' sessions are idle
    database_owner_role: bool  # a member of the database's owner role, so of pg_database_owner (15+: owns public)
    maintenance_connect: bool | None  # CONNECT on database "postgres"; None: there is no such database


@dataclass(frozen=True, kw_only=True)
class Unreadable:
    """Something pg_dump may not read: a schema without USAGE (``name`` None), or a table or
    sequence without SELECT or behind row-level security. ``why``: "no USAGE", "no SELECT",
    "row-level security"."""

    schema: str
    name: str | None
    why: str


@dataclass(frozen=True, kw_only=True)
class DatabaseFacts:
    """A managed database and what its role may do there; object names as ``schema.name``."""

    server_version: str
    server_major: int
    database: str
    size: int                                 # pg_database_size, bytes
    data_size: int                            # the tables' own bytes (no indexes): what pg_dump reads
    role: RoleFacts
    migrations_schema: str
    schema_usage: bool                        # USAGE on the migrations schema
    schema_create: bool                       # CREATE on it: migrations and the version table
    version_table: str                        # ``schema.table``
    version_table_missing: tuple[str, ...]    # of SELECT, INSERT, DELETE on it; () also when it does not exist
    version_table_exists: bool
    schemas_not_owned: tuple[str, ...]        # user schemas the role cannot drop
    objects_not_owned: tuple[str, ...]        # tables, views, sequences, functions, types of other roles
    unreadable: tuple[Unreadable, ...]        # what pg_dump cannot read
    untrusted_extensions: tuple[str, ...]     # only a superuser can create them again
    large_objects_not_owned: int
    abandoned_restores: tuple[str, ...] = ()  # databases killed new-database restores left (commands.pg.restore_names)


@dataclass(frozen=True, kw_only=True)
class ControlFacts:
    """The control database: its schema's version, and the version dbops' migrations reach."""

    version: int
    dirty: bool
    latest: int


class Probe(Protocol):
    def database(self, env: EnvironmentSettings) -> DatabaseFacts:
        """Connect to ``env``'s database as dbops does and read the facts. Raises
        DatabaseError (its message says why, the password masked) when it cannot connect."""

    def control(self, url: str) -> ControlFacts:
        """Connect to the control database and read its schema's version. Raises
        DatabaseError when it cannot connect."""

    def client_major(self, env: EnvironmentSettings) -> int:
        """The major version of the pg_dump that snapshots of ``env`` use. Raises
        CommandError when pg_dump, pg_restore or psql is missing or cannot be run."""


class SlackCheck(Protocol):
    def auth_test(self) -> tuple[bool, str]:
        """Call Slack's ``auth.test`` with the bot token: (True, who it is) when the token
        works, else (False, Slack's error or why Slack could not be reached). Never raises,
        never returns the token."""
