"""The doctor's facts from PostgreSQL's catalogs (contract: ``commands.probes.Probe``).

Read-only: every query is a SELECT on the catalogs or a has_*_privilege/pg_has_role call,
in a session of its own that is closed at once. "Owns" means "has the privileges of the owning
role" (``pg_has_role(owner, 'USAGE')``), which is what DROP and ALTER check.

Membership in pg_database_owner is asked as membership in the database's owner, never with
``pg_has_role('pg_database_owner', …)``: a pg_hba.conf line for a group (``+group``) makes
the server work out the session's memberships before it knows the database, and for the rest
of the session that call answers false even for the database's owner (PostgreSQL 18.6).
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import psycopg

from commands.config import EnvironmentSettings
from commands.errors import DatabaseError
from commands.pg.connect import CONTROL, connect, describe, environment
from commands.pg.control import CONTROL_MIGRATIONS, CONTROL_TABLE
from commands.pg.state import PgVersionStore
from commands.pg.tools import ToolError, Tools
from commands.redact import mask_url
from commands.source import load_source

if TYPE_CHECKING:  # the facts the doctor judges: loaded when it asks, not by every command given a probe
    from commands.probes import ControlFacts, DatabaseFacts

_USER_SCHEMA = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"  # n: pg_namespace
_NOT_IN_EXTENSION = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {}::regclass AND d.objid = {} "
                     "AND d.deptype = 'e')")

_ROLE = """
SELECT current_user, r.rolsuper, r.rolcreatedb, r.rolbypassrls, pg_has_role(d.datdba, 'USAGE'),
       pg_has_role(d.datdba, 'MEMBER'), pg_get_userbyid(d.datdba), has_database_privilege(current_database(), 'CREATE'),
       pg_has_role('pg_signal_backend', 'MEMBER'), pg_has_role('pg_read_all_stats', 'MEMBER'),
       (SELECT has_database_privilege(p.oid, 'CONNECT') FROM pg_database p WHERE p.datname = 'postgres'),
       current_setting('server_version'), current_setting('server_version_num')::int,
       current_database(), pg_database_size(current_database()), coalesce(current_schema(), 'public')
FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()
"""

_SCHEMAS_NOT_OWNED = f"""
SELECT n.nspname FROM pg_namespace n
WHERE {_USER_SCHEMA} AND NOT pg_has_role(n.nspowner, 'USAGE') ORDER BY 1
"""

# What a restore must be able to give back its owner (pg_dump writes ALTER … OWNER TO).
_OBJECTS_NOT_OWNED = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_SCHEMA}
  AND NOT pg_has_role(c.relowner, 'USAGE') AND {_NOT_IN_EXTENSION.format("'pg_class'", 'c.oid')}
UNION ALL
SELECT format('%I.%I()', n.nspname, p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER_SCHEMA} AND NOT pg_has_role(p.proowner, 'USAGE')
  AND {_NOT_IN_EXTENSION.format("'pg_proc'", 'p.oid')}
UNION ALL
SELECT format('%I.%I', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'r') AND {_USER_SCHEMA} AND NOT pg_has_role(t.typowner, 'USAGE')
  AND {_NOT_IN_EXTENSION.format("'pg_type'", 't.oid')}
ORDER BY 1
"""

# pg_dump reads every table and sequence with row_security off: one it may not read, or one
# whose rows a policy would filter, makes the whole dump fail.
_UNREADABLE = f"""
SELECT n.nspname, NULL, 'no USAGE' FROM pg_namespace n
WHERE {_USER_SCHEMA} AND NOT has_schema_privilege(n.oid, 'USAGE')
UNION ALL
SELECT n.nspname, c.relname,
       CASE WHEN has_table_privilege(c.oid, 'SELECT') THEN 'row-level security' ELSE 'no SELECT' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'S') AND {_USER_SCHEMA}
  AND has_schema_privilege(n.oid, 'USAGE') AND {_NOT_IN_EXTENSION.format("'pg_class'", 'c.oid')}
  AND (NOT has_table_privilege(c.oid, 'SELECT')
       OR (c.relrowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
           AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))))
ORDER BY 1, 2 NULLS FIRST
"""

_DATA_SIZE = f"""
SELECT coalesce(sum(pg_table_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND ({_USER_SCHEMA} OR c.oid = 'pg_largeobject'::regclass)
"""

_SCHEMA = """
SELECT coalesce(has_schema_privilege(n.oid, 'USAGE'), false), coalesce(has_schema_privilege(n.oid, 'CREATE'), false),
       -- to_regclass raises, rather than answer, for a schema without USAGE
       CASE WHEN has_schema_privilege(n.oid, 'USAGE')
            THEN to_regclass(format('%%I.%%I', %(schema)s::text, %(table)s::text)) IS NOT NULL ELSE false END
FROM (SELECT %(schema)s::name AS nspname) s LEFT JOIN pg_namespace n ON n.nspname = s.nspname
"""

_VERSION_TABLE_MISSING = """
SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'DELETE']) p
WHERE NOT has_table_privilege(to_regclass(format('%%I.%%I', %(schema)s::text, %(table)s::text)), p)
"""

_UNTRUSTED_EXTENSIONS = f"""
SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_available_extension_versions v ON v.name = e.extname AND v.version = e.extversion
WHERE {_USER_SCHEMA} AND NOT coalesce(v.trusted, false) ORDER BY 1
"""


class PgProbe:
    """Reads the facts ``commands.doctor.doctor`` judges (contract: ``commands.probes.Probe``)."""

    def database(self, env: EnvironmentSettings) -> DatabaseFacts:
        with connect(env.database_url, database=environment(env.name), application_name="dbops-doctor") as conn:
            try:
                return self._facts(conn, env)
            except psycopg.Error as err:
                raise DatabaseError(f"Could not read the catalogs of {mask_url(env.database_url)}: "
                                    f"{describe(err)}") from None

    def _facts(self, conn: psycopg.Connection, env: EnvironmentSettings) -> DatabaseFacts:
        from commands.probes import DatabaseFacts, RoleFacts, Unreadable
        (user, superuser, createdb, bypassrls, owns_db, owner_member, db_owner, create_db, signal, stats, maintenance,
         version, version_num, database, size, current_schema) = conn.execute(_ROLE).fetchone()
        schema = env.migrations_schema or current_schema
        usage, create, exists = conn.execute(_SCHEMA, {"schema": schema, "table": env.migrations_table}).fetchone()
        missing = ()
        if exists:
            missing = self._column(conn, _VERSION_TABLE_MISSING, {"schema": schema, "table": env.migrations_table})
        role = RoleFacts(user=user, superuser=superuser, createdb=createdb, bypassrls=bypassrls, owns_database=owns_db,
                         database_owner=db_owner, create_on_database=create_db, signal_backend=signal,
                         read_all_stats=stats, database_owner_role=owner_member, maintenance_connect=maintenance)
        return DatabaseFacts(
            server_version=version, server_major=version_num // 10000, database=database, size=size,
            data_size=conn.execute(_DATA_SIZE).fetchone()[0], role=role,
            migrations_schema=schema, schema_usage=usage, schema_create=create,
            version_table=f"{schema}.{env.migrations_table}", version_table_exists=exists,
            version_table_missing=missing, schemas_not_owned=self._column(conn, _SCHEMAS_NOT_OWNED),
            objects_not_owned=self._column(conn, _OBJECTS_NOT_OWNED),
            unreadable=tuple(Unreadable(schema=schema_, name=name, why=why)
                             for schema_, name, why in conn.execute(_UNREADABLE).fetchall()),
            untrusted_extensions=self._column(conn, _UNTRUSTED_EXTENSIONS),
            large_objects_not_owned=conn.execute(
                "SELECT count(*) FROM pg_largeobject_metadata WHERE NOT pg_has_role(lomowner, 'USAGE')").fetchone()[0],
            abandoned_restores=tuple(_abandoned_restores(conn, database)))

    @staticmethod
    def _column(conn: psycopg.Connection, query: str, params: dict | None = None) -> tuple[str, ...]:
        return tuple(row[0] for row in conn.execute(query, params).fetchall())

    def control(self, url: str) -> ControlFacts:
        from commands.probes import ControlFacts
        latest = load_source(CONTROL_MIGRATIONS).last_version
        with connect(url, database=CONTROL, application_name="dbops-doctor") as conn:
            try:
                schema = conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()[0]
                state = PgVersionStore(conn, schema=schema, table=CONTROL_TABLE).read()
            except psycopg.Error as err:
                raise DatabaseError(f"Could not read the control database's schema version: {describe(err)}") from None
        return ControlFacts(version=state.version, dirty=state.dirty, latest=latest)

    def client_major(self, env: EnvironmentSettings) -> int:
        tools = Tools.for_bin_dir(env.pg_bin_dir)
        try:
            return tools.major_version("pg_dump")
        except (OSError, subprocess.SubprocessError) as err:
            raise ToolError(f"{tools.path('pg_dump')} --version did not run: {err}.") from None


def _abandoned_restores(conn, database: str) -> list[str]:
    from commands.pg.restore_names import abandoned_restores  # the doctor's facts only: a status never loads it
    return abandoned_restores(conn, database)
