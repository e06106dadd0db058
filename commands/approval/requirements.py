"""Which operations need a second person: the ``require_approval`` word of each command, and
whether this one, here, needs a request.

Apart from the rest of the two-person rule (``commands.approval.approvals``: the state a request
is bound to, the rules an approval must pass) because the executor asks this of every command,
and a command that can never need approval (a status) should not load the machinery of those
that can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands import grammar as g

if TYPE_CHECKING:
    from commands.approval.results import Impact
    from commands.config import EnvironmentSettings

OPERATIONS: dict[type, str] = {
    g.MigrateUp: "up", g.MigrateDown: "down", g.MigrateGoto: "goto", g.MigrateForce: "force",
    g.MigrateBaseline: "force",  # it records a version as force does, only more carefully
    g.MigrateDryRun: "dry-run", g.SnapshotRestore: "restore", g.SnapshotCleanup: "cleanup",
    g.DbopsLockRelease: "lock-release", g.MigrateUnblock: "unblock", g.SnapshotReimport: "reimport",
}


def operation_of(command: g.Command) -> str | None:
    """The ``require_approval`` word for ``command``; None for what never needs one."""
    if isinstance(command, g.SnapshotCleanup) and command.dry_run:
        return None
    if isinstance(command, g.Rollback) and command.recover:
        return "force"  # what it records is a force; what it drops is shown on the request
    if isinstance(command, g.Rollback):
        equivalent = rollback_equivalent(command)
        return None if equivalent is None else OPERATIONS[type(equivalent)]
    return OPERATIONS.get(type(command))


def rollback_equivalent(command: g.Rollback) -> g.Command | None:
    """The plain command a rollback's method comes down to (None: the plan, which changes nothing)."""
    if command.snapshot is not None:
        return g.SnapshotRestore(env=command.env, name=command.snapshot, preserve=command.preserve)
    if command.to is not None:
        return g.MigrateGoto(env=command.env, version=command.to)
    if command.steps is not None:
        return g.MigrateDown(env=command.env, steps=command.steps)
    return None


def lint_gates(command: g.Command, env: EnvironmentSettings) -> bool:
    """Whether ``command``'s lint findings may make it a request: an up, with linting on."""
    return isinstance(command, g.MigrateUp) and env.lint_block_severity != "none"


def needs_approval(command: g.Command, env: EnvironmentSettings, impact: Impact | None = None, *,
                   source: str | None = None) -> bool:
    """``require_approval`` lists the operation, or ``impact`` (an up's, from ``situation``)
    has lint findings at or above ``lint_block_severity`` that nothing allows, or it restores
    a snapshot of ``source``, another environment (``restore_from``): that always needs a
    second person of ``env``, whatever ``require_approval`` says."""
    operation = operation_of(command)
    if operation is not None and operation in env.require_approval:
        return True
    if source is not None and source != env.name and operation == "restore":
        return True
    if impact is None or not lint_gates(command, env):
        return False
    from commands.lint.findings import REFUSED_BY_UP, blocks  # the lint's rules: only for an up's findings
    return any(blocks(f, env.lint_block_severity) for f in impact.findings if f.rule not in REFUSED_BY_UP)
