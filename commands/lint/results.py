"""What the lint rules found in a migration, and ``migrate plan``'s result."""

from __future__ import annotations

from dataclasses import dataclass

from commands.results import FileCheck, Outcome, ResultBase, State
from commands.sessions import Blocker


@dataclass(frozen=True, kw_only=True)
class LossyStatement:
    filename: str
    line: int
    description: str  # e.g. "drops table users"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One lint finding on a pending migration file (``commands.lint.lint``, squawk)."""

    rule: str                 # "drop-column", "require-concurrent-index-creation", …
    severity: str             # "error", "warning" or "info"
    filename: str
    line: int | None
    message: str
    source: str = "dbops"     # "dbops" (commands.lint.lint) or "squawk"
    allowed_by: str | None = None  # why it is accepted (an allow comment or lint_allow): shown, never blocking
    # why a live-data risk was lowered to info: the table is new in this run, absent or empty now
    live_judgement: str | None = None


@dataclass(frozen=True, kw_only=True)
class LockEstimate:
    """The lock one statement takes on one table (PostgreSQL's table-level lock modes)."""

    line: int
    table: str
    lock: str       # "ACCESS EXCLUSIVE", "SHARE", …
    statement: str  # "ALTER TABLE", "CREATE INDEX", …


@dataclass(frozen=True, kw_only=True)
class PlanFile:
    version: int
    name: str
    filename: str | None  # the up file; None: no up file (a no-op step)
    mode: str             # how it will run: "transactional", "own-transaction", "no-transaction"
    findings: tuple[Finding, ...] = ()
    locks: tuple[LockEstimate, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlanResult(ResultBase):
    """``/migrate plan``: the pending migrations in order, linted; FAILED when a finding blocks ``up``."""

    env: str
    state: State
    files: tuple[PlanFile, ...]
    block_severity: str  # findings at or above it (not allowed) make ``up`` a request; "none": never
    blocking: int        # how many findings block
    outcome: Outcome
    files_check: FileCheck = FileCheck()  # applied files edited, gone or out of order
    # Sessions holding (or waiting for) locks that conflict with the plan's, now: `up` would wait behind them
    blockers: tuple[Blocker, ...] = ()
    operation: str = "plan"
