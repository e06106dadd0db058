"""Recovery that keeps good work: a dirty database whose schema is exactly the previous
version plus leftovers of the failed file that go without data loss (an index, an empty
table it created). Remove them and force the previous version: every migration before the
failed one, and every write since, stays; no snapshot is restored.

The order is the one every change has: lock → state check → snapshot → change (drop the
leftovers) → verify (the schema is now exactly the previous version) → record the version.
"""

from __future__ import annotations

import structlog

from commands import privileges
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import UsageError
from commands.lock.migration_lock import migration_lock
from commands.migrate.results import MigrateResult
from commands.results import Outcome, Refusal, State
from commands.schema.compare import compare
from commands.schema.expected import expected_schema
from commands.schema.identify import recovery
from commands.schema.results import SchemaVersion
from commands.snapshot.safety import safety_snapshot
from commands.source import load_source

log = structlog.get_logger("dbops.rollback")


def _not_recoverable(state: State, found: SchemaVersion | None, env: EnvironmentSettings) -> str:
    if found is None:
        return (f"The database is not dirty at a version a file has ({'dirty' if state.dirty else 'clean'} at "
                f"{state.version}): there is nothing to recover. `/rollback {env.name}` shows the options.")
    if found.error is not None:
        return f"Which version the schema is could not be told: {found.error}"
    kept = [f"{item.kind} {item.name} ({item.why_not})" for item in found.leftovers if not item.removable]
    why = ("what stays cannot be removed without data loss: " + "; ".join(kept) if kept else
           f"the schema is not version {found.previous} plus leftovers of migration {found.failed}")
    return f"Cannot recover this way: {why}. `/rollback {env.name}` shows the other options."


def recover(ctx: Context, env: EnvironmentSettings) -> tuple[MigrateResult | Refusal, tuple[str, ...]]:
    """Run the recovery; (what it did, the DROPs it ran). A state in which it does not apply is
    a UsageError, and nothing is changed."""
    source = load_source(env.migrations_dir)
    with migration_lock(ctx, env, "force") as db:
        if isinstance(db, Refusal):
            return db, ()
        missing = privileges.refusal(ctx, env, "force")
        if missing is not None:
            return missing, ()
        before = db.store.read()
        found = recovery(ctx, env, source, before, db)
        if found is None or not found.recoverable:
            raise UsageError(_not_recoverable(before, found, env))
        snapshot = safety_snapshot(ctx, env, before, f"pre-recover v{before.version} to v{found.previous}", "recover")
        ran = []
        for item in found.leftovers:
            ctx.step("drop", f"{item.kind} {item.name}")
            db.leftovers.drop(item.kind, *item.schema_and_name)
            ran.append(item.statement)
        ctx.step("verify", str(found.previous))
        remaining = compare(expected_schema(ctx, env, source, found.previous)[0], ctx.databases.scratch(env).live())
        if remaining:  # something else changed meanwhile: the version is not recorded on a guess
            log.warning("recover.unverified", differences=len(remaining))
            return MigrateResult(env=env.name, operation="recover", outcome=Outcome.FAILED, before=before,
                                 after=db.store.read(), snapshot=snapshot), tuple(ran)
        db.store.write(found.previous, False)
        after = db.store.read()
    log.info("migration.recovered", failed=before.version, version=found.previous, dropped=len(ran))
    return MigrateResult(env=env.name, operation="recover", outcome=Outcome.DONE, before=before, after=after,
                         snapshot=snapshot), tuple(ran)
