"""What each operation needs of the database role, judged from the catalogs' facts
(``commands.probes.DatabaseFacts``), and the refusal for an operation the role cannot do.

One judgement for two callers: ``/dbops doctor`` (``commands.doctor.doctor_privileges``) reports it
for every feature, and each state-changing operation asks it in its state-check step (after
the lock, before the safety snapshot and before any SQL) and at request time, so a role that
cannot do an operation is refused by name before anything changes and before anyone is asked
to approve it.

What each feature needs, and why (the statements dbops runs):
- migrations: USAGE and CREATE on the migrations schema (the version table, new objects),
  SELECT/INSERT/DELETE on the version table; owning what a migration alters.
- snapshots: pg_dump reads every table and sequence with row_security off, so SELECT on all
  of them and no row-level security in its way (owner, or BYPASSRLS).
- restore in place: drops every user schema and creates ``public`` again, so owning every
  user schema and CREATE on the database; from PostgreSQL 15 it gives ``public`` back to
  pg_database_owner, which only the database's owner may do.
- restore into a new database: CREATEDB, owning the database (it is renamed aside), CONNECT
  on the ``postgres`` database (where the swap runs).
- both restores: pg_dump's ``ALTER … OWNER TO`` gives every object back to its owner, so
  being a member of every owner's role; extensions only a superuser may create stop them.
- lock release: ending another role's session needs pg_signal_backend; seeing that it is
  idle needs pg_read_all_stats.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from commands.config import EnvironmentSettings
from commands.context import Context
from commands.results import LockHolder, Missing, Reason, Refusal, Shortfall

if TYPE_CHECKING:  # read from PostgreSQL only when judged: a status loads this module, not the facts
    from commands.probes import DatabaseFacts

SHOWN = 5  # names listed in a detail before "and N more"

Need = tuple[str, str]  # (what the role lacks, the statement or setting that gives it)

# The operations whose needs are known up front, as Refusal.operation names them.
MIGRATING = ("up", "down", "goto", "force")
SNAPSHOT_CREATE = "snapshot create"
RESTORE = "snapshot restore"
LOCK_RELEASE = "dbops lock release"


def ident(name: str) -> str:
    """``name`` as SQL would need it written in a GRANT: quoted unless it is plain lower case."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def listed(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def migration_needs(env: EnvironmentSettings, f: DatabaseFacts) -> list[Need]:
    """What ``f.role`` lacks to read and write the version table (creating it if missing): []
    when it can. What a migration file itself alters is the file's business: it fails, rolled back."""
    user, schema = ident(f.role.user), ident(f.migrations_schema)
    needs: list[Need] = []
    if not f.schema_usage:
        needs.append((f"USAGE on schema {f.migrations_schema}", f"GRANT USAGE ON SCHEMA {schema} TO {user}"))
    if not f.version_table_exists and not f.schema_create:
        needs.append((f"CREATE on schema {f.migrations_schema} (to create the version table {f.version_table})",
                      f"GRANT CREATE ON SCHEMA {schema} TO {user}"))
    if f.version_table_missing:
        needs.append((f"{', '.join(f.version_table_missing)} on {f.version_table}",
                      f"GRANT SELECT, INSERT, DELETE ON {schema}.{ident(env.migrations_table)} TO {user}"))
    return needs


def snapshot_fixes(f: DatabaseFacts) -> list[str]:
    """The grants that let pg_dump, as ``f.role``, read what it cannot (``f.unreadable``)."""
    user = ident(f.role.user)
    fixes = [f"GRANT USAGE ON SCHEMA {ident(s)} TO {user}"
             for s in sorted({u.schema for u in f.unreadable if u.why == "no USAGE"})]
    fixes += [f"GRANT SELECT ON ALL TABLES IN SCHEMA {ident(s)} TO {user}; "
              f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {ident(s)} TO {user}"
              for s in sorted({u.schema for u in f.unreadable if u.why == "no SELECT"})]
    if any(u.why == "row-level security" for u in f.unreadable):
        fixes.append(f"ALTER ROLE {user} BYPASSRLS (row-level security would filter the dump)")
    return fixes


def snapshot_needs(f: DatabaseFacts) -> list[Need]:
    """What ``f.role`` lacks for pg_dump to read the whole database: [] when it can."""
    if not f.unreadable:
        return []
    shown = [f"{u.schema}.{u.name} ({u.why})" if u.name else f"schema {u.schema} ({u.why})" for u in f.unreadable]
    return [(f"read access to {listed(shown)} (a snapshot's pg_dump reads every table and sequence)",
             "; ".join(snapshot_fixes(f)))]


def restore_needs(mode: str, f: DatabaseFacts) -> list[Need]:
    """What ``f.role`` lacks to restore a snapshot in ``mode``: [] when it can."""
    r = f.role
    if r.superuser:
        return []
    user, database = ident(r.user), ident(f.database)
    needs: list[Need] = []
    if mode == "in-place":
        must_own_database = f.server_major >= 15 and not r.database_owner_role
        if must_own_database:
            needs.append((f"ownership of database {f.database} (from PostgreSQL 15 the restore gives schema public "
                          "back to its owner, pg_database_owner)", f"ALTER DATABASE {database} OWNER TO {user}"))
        schemas = [s for s in f.schemas_not_owned if not (must_own_database and s == "public")]
        if schemas:
            needs.append((f"ownership of schema {', '.join(schemas)} (the restore drops every user schema)",
                          "; ".join(f"ALTER SCHEMA {ident(s)} OWNER TO {user}" for s in schemas)))
        if not r.create_on_database and not must_own_database:
            needs.append((f"CREATE on database {f.database} (to create schema public again)",
                          f"GRANT CREATE ON DATABASE {database} TO {user}"))
        if f.large_objects_not_owned:
            needs.append((f"ownership of {f.large_objects_not_owned} large objects (the restore unlinks them)",
                          f"ALTER LARGE OBJECT … OWNER TO {user}"))
    else:
        if not r.createdb:
            needs.append(("CREATEDB (the restore creates a database beside this one)", f"ALTER ROLE {user} CREATEDB"))
        if not r.owns_database:
            needs.append((f"ownership of database {f.database} (it is renamed aside, and kept)",
                          f"ALTER DATABASE {database} OWNER TO {user}"))
        if not r.maintenance_connect:
            needs.append(("CONNECT on database postgres (where the swap runs)",
                          f"GRANT CONNECT ON DATABASE postgres TO {user}"))
    if f.objects_not_owned:
        needs.append((f"membership in the roles that own {listed(f.objects_not_owned)} (the snapshot gives each "
                      "object back to its owner)", f"GRANT the owning roles TO {user}, or ALTER … OWNER TO {user}"))
    if f.untrusted_extensions:
        needs.append((f"superuser, to create extension {', '.join(f.untrusted_extensions)} again",
                      "a superuser's database_url for this environment"))
    return needs


def other_mode(mode: str) -> str:
    return "new-database" if mode == "in-place" else "in-place"


def lock_release_lacking(f: DatabaseFacts) -> list[str]:
    """The predefined roles ``f.role`` is not in, of those ending another role's idle session needs."""
    r = f.role
    if r.superuser:
        return []
    return [role for role, member in (("pg_signal_backend", r.signal_backend), ("pg_read_all_stats", r.read_all_stats))
            if not member]


def lock_release_needs(f: DatabaseFacts) -> list[Need]:
    """What ``f.role`` lacks to end another role's idle session holding the migration lock."""
    why = {"pg_signal_backend": "membership in pg_signal_backend (to end another role's session)",
           "pg_read_all_stats": "membership in pg_read_all_stats (to see that another role's session is idle)"}
    return [(why[role], f"GRANT {role} TO {ident(f.role.user)}") for role in lock_release_lacking(f)]


def _missing(needs: list[Need]) -> tuple[Missing, ...]:
    return tuple(Missing(what=what, fix=fix) for what, fix in needs)


def refusal(ctx: Context, env: EnvironmentSettings, operation: str, *,
            holder: LockHolder | None = None) -> Refusal | None:
    """The MISSING_PRIVILEGE refusal of ``operation`` on ``env``, or None when the role can do it
    (or when no probe reads the catalogs here: then PostgreSQL's own error says it, cleanly).

    Reads only the catalogs, in a session of its own. ``holder``: for a lock release, the
    session holding the migration lock (a session of the role itself needs nothing more)."""
    if ctx.probe is None or (operation == LOCK_RELEASE and (holder is None or holder.own)):
        return None
    facts = ctx.probe.database(env)
    setting, setting_needs = None, ()
    if operation in MIGRATING:
        needs = migration_needs(env, facts) + _safety_snapshot_needs(env, facts)
    elif operation == SNAPSHOT_CREATE:
        needs = snapshot_needs(facts)
    elif operation == RESTORE:
        needs = restore_needs(env.restore_mode, facts)
        if needs:
            other = other_mode(env.restore_mode)
            setting, setting_needs = f'restore_mode = "{other}"', _missing(restore_needs(other, facts))
        needs += _safety_snapshot_needs(env, facts)
    elif operation == LOCK_RELEASE:
        needs = lock_release_needs(facts)
    else:
        raise AssertionError(f"no privilege judgement for {operation!r}")
    if not needs:
        return None
    return Refusal(env=env.name, operation=operation, reason=Reason.MISSING_PRIVILEGE,
                   shortfall=Shortfall(role=facts.role.user, missing=_missing(needs), setting=setting,
                                       setting_needs=setting_needs))


def _safety_snapshot_needs(env: EnvironmentSettings, f: DatabaseFacts) -> list[Need]:
    return snapshot_needs(f) if env.pre_migration_snapshot and env.snapshots_on else []
