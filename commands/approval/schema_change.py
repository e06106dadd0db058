"""The schema change of a migration request, for its approval card: the expected schema of
the current version against that of the target (both from the cache when they were built
before). Computed once, when the request is made; never on a render, never at approval."""

from __future__ import annotations

import dataclasses

import structlog

from commands.approval.results import Impact
from commands.config import EnvironmentSettings
from commands.context import Context, ignore_progress
from commands.errors import CommandError
from commands.schema.compare import compare
from commands.schema.expected import expected_schema
from commands.source import load_source

log = structlog.get_logger("dbops.schema")


def with_schema_change(ctx: Context, env: EnvironmentSettings, impact: Impact) -> Impact:
    """``impact`` with ``schema_change`` (``+`` what the target adds, ``-`` what it removes),
    or with ``schema_unavailable`` saying why the expected schemas could not be built. It
    never raises: a request goes on without its schema change rather than not at all."""
    if impact.target is None or impact.before.dirty or impact.target == impact.before.version:
        return impact
    source = load_source(env.migrations_dir)
    # Quietly: a request is not an operation that starts; a surface showing progress would
    # show one that never finishes.
    ctx = dataclasses.replace(ctx, progress=ignore_progress)
    try:
        current, _, _ = expected_schema(ctx, env, source, impact.before.version)
        target, _, _ = expected_schema(ctx, env, source, impact.target)
    except CommandError as err:
        log.warning("schema_change.unavailable", env=env.name, error=err.message)
        return dataclasses.replace(impact, schema_unavailable=err.message)
    except Exception:  # a bug here must not stand between a request and its approver: logged, said
        log.exception("schema_change.failed", env=env.name)
        return dataclasses.replace(impact, schema_unavailable="building the expected schemas failed (see the log)")
    return dataclasses.replace(impact, schema_change=compare(current, target))
