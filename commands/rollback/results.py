"""The rollback plan of options and what a rollback did, checklist facts included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from commands.app.results import AppHealthCheck, AppHooks
from commands.migrate.results import MigrationInfo
from commands.results import Outcome, ResultBase, State

if TYPE_CHECKING:  # named by an option only: the results of approvals stay unloaded until used
    from commands.approval.results import Impact
    from commands.schema.results import SchemaVersion


@dataclass(frozen=True, kw_only=True)
class RollbackOption:
    """One way out that ``/rollback`` offers for the current state (the guide's methods)."""

    method: str                 # "recover", "down", "restore", "force-down", "force-previous"
    command: str                # what choosing it runs (before its reason is added)
    recommended: bool
    available: bool
    why_not: str | None = None  # when not available
    impact: Impact | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RollbackPlan(ResultBase):
    env: str
    state: State
    migration: MigrationInfo | None   # the one being undone (the current, or the failed, version)
    options: tuple[RollbackOption, ...]
    schema_version: SchemaVersion | None = None  # dirty: which version the live schema really is
    outcome: Outcome = Outcome.DONE
    operation: str = "rollback plan"


@dataclass(frozen=True, kw_only=True)
class OrphanCount:
    """Rows of ``table`` whose foreign key ``constraint`` points at no row of ``references``."""

    constraint: str
    table: str
    columns: tuple[str, ...]
    references: str
    rows: int


@dataclass(frozen=True, kw_only=True)
class RollbackResult(ResultBase):
    env: str
    method: str
    reason: str
    requester: str
    approved_by: str | None
    before: State
    after: State
    expected_version: int | None      # where the rollback should have left the database
    step: "Result"  # what the underlying down/goto/restore returned (a commands.kinds.Result, named only)
    snapshots: tuple[str, ...]        # safety snapshots taken before anything changed
    foreign_keys_checked: int
    orphans: tuple[OrphanCount, ...]  # only constraints with violations
    app_health: AppHealthCheck | None
    recorded: bool                    # in the control database's rollback log
    deployment_state: str | None      # the deployment-state.json written, if configured
    dropped: tuple[str, ...] = ()     # recover: the DROPs of the failed file's leftovers that ran
    app_hooks: AppHooks | None = None  # the application paused and resumed around it (commands.app.hooks)
    outcome: Outcome = Outcome.DONE
    operation: str = "rollback"
