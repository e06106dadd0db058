"""The one executor every surface calls: ``Executor.run(command, actor) -> Result``.

It resolves the environment, binds the log context, and hands the command to its runner
(``migrate_ops``, ``snapshot_ops``). Every Command type must have a runner: a missing one
fails at start-up, not when a user first types it. Refusals come back as Result values;
faults are CommandError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import structlog

from commands import grammar as g
from commands import migrate_ops, snapshot_ops
from commands.config import EnvironmentSettings, Settings
from commands.context import Actor, Context, utc_now
from commands.errors import UsageError
from commands.migrations import Databases, Snapshotter
from commands.results import Result

__all__ = ["Actor", "Executor"]

RUNNERS: dict[type, Callable[..., Result]] = {
    g.MigrateStatus: migrate_ops.status,
    g.MigrateValidate: migrate_ops.validate,
    g.MigrateDryRun: migrate_ops.dry_run,
    g.MigrateUp: migrate_ops.migrate,
    g.MigrateDown: migrate_ops.migrate,
    g.MigrateGoto: migrate_ops.migrate,
    g.MigrateForce: migrate_ops.force,
    g.SnapshotList: snapshot_ops.list_,
    g.SnapshotCreate: snapshot_ops.create,
    g.SnapshotVerify: snapshot_ops.verify,
    g.SnapshotRestore: snapshot_ops.restore,
    g.SnapshotPin: snapshot_ops.pin,
    g.SnapshotCleanup: snapshot_ops.cleanup,
}


class Executor:
    def __init__(self, settings: Settings, databases: Databases, snapshots: Snapshotter,
                 *, clock: Callable[[], datetime] = utc_now) -> None:
        missing = [c.__name__ for c in g.COMMANDS if c not in RUNNERS]
        if missing:
            raise RuntimeError(f"no runner for {', '.join(missing)}")
        self.settings = settings
        self.databases = databases
        self.snapshots = snapshots
        self.clock = clock

    def run(self, command: g.Command, actor: Actor) -> Result:
        env = self.resolve_environment(command.env, actor)
        context = Context(settings=self.settings, databases=self.databases, snapshots=self.snapshots,
                          actor=actor, clock=self.clock)
        structlog.contextvars.bind_contextvars(env=env.name, actor=actor.user, command=type(command).__name__)
        try:
            return RUNNERS[type(command)](context, command, env)
        finally:
            structlog.contextvars.unbind_contextvars("env", "actor", "command")

    def resolve_environment(self, name: str | None, actor: Actor) -> EnvironmentSettings:
        if name is not None:
            return self.settings.environment(name)
        candidates = list(self.settings.environments.values())
        if actor.channel is not None:
            candidates = [e for e in candidates if actor.channel in e.channels]
        if len(candidates) == 1:
            return candidates[0]
        names = ", ".join(sorted(e.name for e in candidates)) or ", ".join(sorted(self.settings.environments))
        raise UsageError(f"Which environment? Name one of: {names}.")
