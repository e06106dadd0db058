"""The doctor's privilege checks: what each feature needs of the database role, judged from the
catalogs' facts (``commands.probes.DatabaseFacts``), each shortfall with the grant that fixes
it or the configuration that avoids it.

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

from commands.config import EnvironmentSettings
from commands.probes import DatabaseFacts
from commands.results import DoctorCheck, Verdict

MIGRATIONS = "migration privileges"
SNAPSHOTS = "snapshot privileges"
RESTORE = "restore privileges"
LOCK_RELEASE = "lock release privileges"
NAMES = (MIGRATIONS, SNAPSHOTS, RESTORE, LOCK_RELEASE)
SHOWN = 5  # names listed in a detail before "and N more"

Need = tuple[str, str]  # (what the role lacks, the statement or setting that gives it)


def ident(name: str) -> str:
    """``name`` as SQL would need it written in a GRANT: quoted unless it is plain lower case."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def listed(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def privilege_checks(env: EnvironmentSettings, facts: DatabaseFacts | None) -> list[DoctorCheck]:
    if facts is None:
        return [DoctorCheck(name=name, verdict=Verdict.SKIP, detail="not checked: the database connection failed")
                for name in NAMES]
    return [_migrations(env, facts), _snapshots(env, facts), _restore(env, facts), _lock_release(facts)]


def _migrations(env: EnvironmentSettings, f: DatabaseFacts) -> DoctorCheck:
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
    if needs:
        return _lacking(MIGRATIONS, f"role {f.role.user} lacks what migrations need: ", needs, Verdict.FAIL)
    warns: list[Need] = []
    if not f.schema_create:
        warns.append((f"CREATE on schema {f.migrations_schema}: a migration that creates a table or view there fails",
                       f"GRANT CREATE ON SCHEMA {schema} TO {user}"))
    if f.objects_not_owned:
        objects = "1 object belongs" if len(f.objects_not_owned) == 1 else f"{len(f.objects_not_owned)} objects belong"
        warns.append((f"{objects} to other roles ({listed(f.objects_not_owned)}): a migration that alters or drops "
                      "one of them fails",
                      f"ALTER … OWNER TO {user} for each, or run those migrations as their owner"))
    if warns:
        return _lacking(MIGRATIONS, f"role {f.role.user} can run migrations, but: ", warns, Verdict.WARN)
    return DoctorCheck(name=MIGRATIONS, verdict=Verdict.PASS,
                       detail=f"role {f.role.user} can write {f.version_table} and owns every object in the user "
                              "schemas")


def _snapshots(env: EnvironmentSettings, f: DatabaseFacts) -> DoctorCheck:
    if env.snapshot_dir is None:
        return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.SKIP,
                           detail="snapshots are off (no snapshot_dir, pre_migration_snapshot = false)")
    if not f.unreadable:
        return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.PASS,
                           detail=f"role {f.role.user} can read every table and sequence (pg_dump)")
    shown = [f"{u.schema}.{u.name} ({u.why})" if u.name else f"schema {u.schema} ({u.why})" for u in f.unreadable]
    user = ident(f.role.user)
    fixes = [f"GRANT USAGE ON SCHEMA {ident(s)} TO {user}"
             for s in sorted({u.schema for u in f.unreadable if u.why == "no USAGE"})]
    fixes += [f"GRANT SELECT ON ALL TABLES IN SCHEMA {ident(s)} TO {user}; "
              f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {ident(s)} TO {user}"
              for s in sorted({u.schema for u in f.unreadable if u.why == "no SELECT"})]
    if any(u.why == "row-level security" for u in f.unreadable):
        fixes.append(f"ALTER ROLE {user} BYPASSRLS (row-level security would filter the dump)")
    return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.FAIL,
                       detail=f"pg_dump as {f.role.user} cannot read {listed(shown)}: every snapshot fails, and with "
                              "it every migration (each takes one first)",
                       fix="; ".join(fixes) + ".")


def _restore_needs(mode: str, f: DatabaseFacts) -> list[Need]:
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


def _restore(env: EnvironmentSettings, f: DatabaseFacts) -> DoctorCheck:
    mode, other = env.restore_mode, "new-database" if env.restore_mode == "in-place" else "in-place"
    name = f"{RESTORE} ({mode})"
    needs, alternative = _restore_needs(mode, f), _restore_needs(other, f)
    if not needs:
        return DoctorCheck(name=name, verdict=Verdict.PASS,
                           detail=f"role {f.role.user} can restore a snapshot {_how(mode)}"
                                  + (" (superuser)" if f.role.superuser else ""))
    if alternative:
        instead = (f'Or set restore_mode = "{other}" under [environments.{env.name}], which needs '
                   + "; ".join(f"{what}: {grant}" for what, grant in alternative) + ".")
    else:
        instead = f'Or set restore_mode = "{other}" under [environments.{env.name}]: this role can do that.'
    return DoctorCheck(
        name=name, verdict=Verdict.FAIL,
        detail=f'restore_mode = "{mode}" needs what role {f.role.user} lacks: '
               + "; ".join(what for what, _ in needs)
               + ". /snapshot restore and /rollback --snapshot would fail, changing nothing",
        fix="; ".join(grant for _, grant in needs) + ". " + instead)


def _how(mode: str) -> str:
    return "in place" if mode == "in-place" else "into a new database and swap it in"


def _lock_release(f: DatabaseFacts) -> DoctorCheck:
    r = f.role
    lacking = [role for role, member in (("pg_signal_backend", r.signal_backend),
                                         ("pg_read_all_stats", r.read_all_stats)) if not member]
    if r.superuser or not lacking:
        return DoctorCheck(name=LOCK_RELEASE, verdict=Verdict.PASS,
                           detail=f"role {r.user} can end another role's idle session that holds the migration lock")
    why = {"pg_signal_backend": "pg_signal_backend (to end another role's session)",
           "pg_read_all_stats": "pg_read_all_stats (to see that another role's session is idle)"}
    return DoctorCheck(
        name=LOCK_RELEASE, verdict=Verdict.WARN,
        detail=f"role {r.user} is not a member of {' or '.join(why[x] for x in lacking)}: /dbops lock release ends "
               f"only sessions of {r.user} itself; a stale lock held by another role is kept, and said so",
        fix=f"GRANT {', '.join(lacking)} TO {ident(r.user)} (as a superuser or the service's admin role), or end "
            "such a session as its own role")


def _lacking(name: str, head: str, needs: list[Need], verdict: Verdict) -> DoctorCheck:
    return DoctorCheck(name=name, verdict=verdict, detail=head + "; ".join(what for what, _ in needs),
                       fix="; ".join(grant for _, grant in needs) + ".")
