"""``/migrate baseline V``: adopt an existing database. It records V (clean) only when the live
schema is exactly the expected schema of V; otherwise it shows the differences and records
nothing. Like force, it holds the migration lock and takes a safety snapshot before it writes."""

from __future__ import annotations

import structlog

from commands import grammar as g
from commands import privileges
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.kinds import Result
from commands.lock.migration_lock import migration_lock
from commands.migrate.plans import require_version
from commands.results import Outcome, Refusal, State
from commands.schema.compare import compare
from commands.schema.expected import expected_schema
from commands.schema.results import BaselineResult
from commands.snapshot.safety import safety_snapshot
from commands.source import load_source

log = structlog.get_logger("dbops.schema")


def baseline(ctx: Context, command: g.MigrateBaseline, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    require_version(source, command.version, allow_nil=False)
    expected = expected_schema(ctx, env, source, command.version)[0]  # built before the lock: it may take a while
    with migration_lock(ctx, env, "baseline") as db:
        if isinstance(db, Refusal):
            return db
        missing = privileges.refusal(ctx, env, "force")
        if missing is not None:
            return missing
        before = db.store.read()
        if before == State(version=command.version, dirty=False):
            return BaselineResult(env=env.name, version=command.version, before=before, after=before,
                                  outcome=Outcome.NO_CHANGE)
        # Read under the lock: no migration can change the schema between this reading and the write.
        differences = compare(expected, ctx.databases.scratch(env).live())
        if differences:
            return BaselineResult(env=env.name, version=command.version, before=before, after=before,
                                  differences=differences, outcome=Outcome.REFUSED)
        snapshot = safety_snapshot(ctx, env, before, f"pre-baseline v{command.version}", "baseline")
        db.store.ensure()
        db.store.write(command.version, False)
        after = db.store.read()
    log.info("migration.baselined", version=command.version, before=before.version, was_dirty=before.dirty)
    return BaselineResult(env=env.name, version=command.version, before=before, after=after, snapshot=snapshot)
