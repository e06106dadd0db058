"""The safety snapshot: taken and verified before a change, so that the change can be undone.

A migration, a force and a restore each take one first; if it fails, the change does not run."""

from __future__ import annotations

import structlog

from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import SnapshotFailed
from commands.results import State
from commands.snapshot.snapshots import find
from commands.snapshot.store import store_for

log = structlog.get_logger("dbops.migrate")  # the name its events had beside the migrations


def safety_snapshot(ctx: Context, env: EnvironmentSettings, state: State, reason: str, operation: str) -> str | None:
    """Take and verify a snapshot before a change; if either fails, the change must not run.

    Returns the snapshot's name, or None when the environment turned pre-migration
    snapshots off (``pre_migration_snapshot = false``). In a restore or rollback with the
    application's hooks, the application is paused first (``commands.app.hooks``): the
    snapshot then holds its last write, and a pause that fails stops the change here.
    """
    if ctx.app is not None:
        ctx.app.pause()
    if not env.pre_migration_snapshot:
        return None
    try:
        created = ctx.snapshots.create(env, reason=reason, actor=ctx.actor.user, state=state,
                                       progress=ctx.snapshot_progress)
        ctx.step("verify", created.name)
        verified = ctx.snapshots.verify(env, find(store_for(env).list(), created.name))
    except SnapshotFailed as err:
        raise SnapshotFailed(f"The snapshot before {operation} failed, so nothing was changed. {err.message}") from None
    if not verified.ok:
        failed = "; ".join(detail for _, passed, detail in verified.checks if not passed)
        raise SnapshotFailed(f"The snapshot before {operation} ({created.name}) did not verify ({failed}), "
                             "so nothing was changed.")
    log.info("snapshot.taken", snapshot=created.name, operation=operation)
    return created.name
