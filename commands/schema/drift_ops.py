"""``/migrate drift``: the live schema against the expected schema of its recorded version.
Read-only: no approval, no lock, no snapshot; the managed database is only read."""

from __future__ import annotations

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.kinds import Result
from commands.results import Outcome
from commands.schema.compare import compare
from commands.schema.expected import expected_schema
from commands.schema.results import DriftResult
from commands.source import NIL_VERSION, load_source


def drift(ctx: Context, command: g.MigrateDrift, env: EnvironmentSettings) -> Result:
    source = load_source(env.migrations_dir)
    with ctx.databases.open(env) as db:
        state = db.store.read()
    unmeasured = ("no_version" if state.version == NIL_VERSION else "dirty" if state.dirty
                  else "unknown_version" if source.get(state.version) is None else None)
    if unmeasured is not None:
        return DriftResult(env=env.name, state=state, unmeasured=unmeasured, latest_file_version=source.last_version,
                           outcome=Outcome.REFUSED)
    scratch = ctx.databases.scratch(env)
    live = scratch.live()
    expected, built_on, cached = expected_schema(ctx, env, source, state.version)
    differences = compare(expected, live)
    return DriftResult(env=env.name, state=state, differences=differences, built_on=built_on, cached=cached,
                       expected_major=expected.server_major, live_major=live.server_major,
                       latest_file_version=source.last_version,
                       outcome=Outcome.FAILED if differences else Outcome.DONE)
