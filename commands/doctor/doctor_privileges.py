"""The doctor's privilege checks: what each feature needs of the database role (judged in
``commands.privileges``, which the operations' own up-front checks use too), each shortfall
with the grant that fixes it or the configuration that avoids it.
"""

from __future__ import annotations

from commands.config import EnvironmentSettings
from commands.privileges import (
    Need, ident, listed, lock_release_lacking, migration_needs, other_mode, restore_needs, snapshot_fixes,
)
from commands.probes import DatabaseFacts
from commands.doctor.results import DoctorCheck, Verdict

MIGRATIONS = "migration privileges"
SNAPSHOTS = "snapshot privileges"
RESTORE = "restore privileges"
LOCK_RELEASE = "lock release privileges"
UNBLOCK = "unblock privileges"
NAMES = (MIGRATIONS, SNAPSHOTS, RESTORE, LOCK_RELEASE, UNBLOCK)


def privilege_checks(env: EnvironmentSettings, facts: DatabaseFacts | None) -> list[DoctorCheck]:
    if facts is None:
        return [DoctorCheck(name=name, verdict=Verdict.SKIP, detail="not checked: the database connection failed")
                for name in NAMES]
    return [_migrations(env, facts), _snapshots(env, facts), _restore(env, facts), _lock_release(facts),
            _unblock(facts)]


def _migrations(env: EnvironmentSettings, f: DatabaseFacts) -> DoctorCheck:
    user, schema = ident(f.role.user), ident(f.migrations_schema)
    needs = migration_needs(env, f)
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
    if not env.snapshots_on:
        return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.SKIP,
                           detail="snapshots are off (no snapshot_dir, pre_migration_snapshot = false)")
    if not f.unreadable:
        return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.PASS,
                           detail=f"role {f.role.user} can read every table and sequence (pg_dump)")
    shown = [f"{u.schema}.{u.name} ({u.why})" if u.name else f"schema {u.schema} ({u.why})" for u in f.unreadable]
    fixes = snapshot_fixes(f)
    return DoctorCheck(name=SNAPSHOTS, verdict=Verdict.FAIL,
                       detail=f"pg_dump as {f.role.user} cannot read {listed(shown)}: every snapshot fails, and with "
                              "it every migration (each takes one first)",
                       fix="; ".join(fixes) + ".")


def _restore(env: EnvironmentSettings, f: DatabaseFacts) -> DoctorCheck:
    mode, other = env.restore_mode, other_mode(env.restore_mode)
    name = f"{RESTORE} ({mode})"
    needs, alternative = restore_needs(mode, f), restore_needs(other, f)
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
    lacking = lock_release_lacking(f)
    if not lacking:
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


def _unblock(f: DatabaseFacts) -> DoctorCheck:
    """Who ``/migrate unblock`` may signal: PostgreSQL lets a superuser signal anyone, a role its
    own sessions (and those of roles it is a member of), a member of pg_signal_backend any
    session but a superuser's."""
    r = f.role
    if r.superuser:
        return DoctorCheck(name=UNBLOCK, verdict=Verdict.PASS,
                           detail=f"role {r.user} is a superuser: /migrate unblock may cancel the query of (or end) "
                                  "any session in a migration's way")
    lacking = [name for name, member in (("pg_signal_backend", r.signal_backend),
                                         ("pg_read_all_stats", r.read_all_stats)) if not member]
    others = ("other roles' sessions too, but never a superuser's" if r.signal_backend
              else "only sessions of its own role (or of roles it is a member of)")
    if not lacking:
        return DoctorCheck(name=UNBLOCK, verdict=Verdict.PASS,
                           detail=f"role {r.user} may cancel the query of (or end) a session in a migration's way: "
                                  f"{others}; a superuser's session is named, and left alone")
    why = {"pg_signal_backend": "pg_signal_backend (to signal another role's session)",
           "pg_read_all_stats": "pg_read_all_stats (to see another role's query, client and state)"}
    return DoctorCheck(
        name=UNBLOCK, verdict=Verdict.WARN,
        detail=f"role {r.user} is not a member of {' or '.join(why[x] for x in lacking)}: /migrate unblock signals "
               f"{others}; a superuser's session is never signalled",
        fix=f"GRANT {', '.join(lacking)} TO {ident(r.user)} (as a superuser or the service's admin role)")


def _lacking(name: str, head: str, needs: list[Need], verdict: Verdict) -> DoctorCheck:
    return DoctorCheck(name=name, verdict=verdict, detail=head + "; ".join(what for what, _ in needs),
                       fix="; ".join(grant for _, grant in needs) + ".")
