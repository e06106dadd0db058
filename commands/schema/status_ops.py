"""``/migrate status`` with the schema's truth: the migrate capability's status, and, only
when the version table leaves the version in doubt, which version the live schema really is.
A clean status at a known version does no schema work and loads no schema module."""

from __future__ import annotations

import dataclasses

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.migrate import migrate_ops
from commands.migrate.results import StatusResult
from commands.source import NIL_VERSION, load_source


def status(ctx: Context, command: g.MigrateStatus, env: EnvironmentSettings) -> StatusResult:
    result = migrate_ops.status(ctx, command, env)
    state = result.state
    if not state.dirty and result.mismatch is None and state.version != NIL_VERSION:
        return result  # the common case: nothing in doubt, nothing more read
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        if not state.dirty and result.mismatch is None and not db.inspector.holds_tables(
                (db.store.schema, db.store.table)):
            return result  # no version and no table: a new database, not a lost version
        from commands.schema.identify import identify  # the schema reader: only when in doubt
        return dataclasses.replace(result, schema_version=identify(ctx, env, source, state, db))
