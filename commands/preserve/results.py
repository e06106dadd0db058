"""What a restore would lose, what a bundle holds, and what a re-import did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commands.results import Outcome, ResultBase


@dataclass(frozen=True, kw_only=True)
class TableLoss:
    """One table's rows written since the snapshot.

    ``rows`` counted by ``columns`` (its insert/update time columns); None when they could not
    be counted (``why``: the time limit, or no privilege to read it). A table with no such
    column has ``columns`` empty and ``changed`` True when its row estimate moved since the
    snapshot's manifest."""

    table: str                  # schema.name
    columns: tuple[str, ...] = ()
    rows: int | None = None
    changed: bool = False
    why: str | None = None


@dataclass(frozen=True, kw_only=True)
class LossEstimate:
    """What a restore of a snapshot taken at ``since`` would lose, table by table."""

    since: datetime
    counted: tuple[TableLoss, ...] = ()     # tables with time columns: rows newer than ``since``
    uncountable: tuple[TableLoss, ...] = ()  # tables with time columns that could not be counted
    untracked: tuple[str, ...] = ()          # tables without time columns whose row estimate moved
    estimates_known: bool = True             # False: the manifest records no row estimates (older snapshot)

    @property
    def rows(self) -> int:
        return sum(t.rows or 0 for t in self.counted)


@dataclass(frozen=True, kw_only=True)
class TableReimport:
    """One table of a bundle re-imported: rows put back, rows skipped because a row with the same
    key exists, rows skipped because the table no longer fits them (``unfit``, saying why)."""

    table: str
    exported: int
    imported: int = 0
    conflicts: int = 0
    unfit: int = 0
    why: str | None = None


@dataclass(frozen=True, kw_only=True)
class BundleInfo:
    name: str
    created_at: datetime
    snapshot: str           # the snapshot whose restore it was made before
    rows: int
    tables: int
    size: int
    pinned: bool


@dataclass(frozen=True, kw_only=True)
class PreserveReport:
    """A restore's rows kept: the bundle they were saved in, and each table's re-import."""

    bundle: str
    tables: tuple[TableReimport, ...]
    untracked: tuple[str, ...] = ()  # changed tables it could not tell the rows of (not in the bundle)

    @property
    def left_in_bundle(self) -> int:
        return sum(t.conflicts + t.unfit for t in self.tables)


@dataclass(frozen=True, kw_only=True)
class PreservedListResult(ResultBase):
    env: str
    bundles: tuple[BundleInfo, ...]  # newest first
    where: str
    outcome: Outcome = Outcome.DONE
    operation: str = "snapshot preserved"


@dataclass(frozen=True, kw_only=True)
class ReimportResult(ResultBase):
    env: str
    report: PreserveReport
    outcome: Outcome = Outcome.DONE
    operation: str = "snapshot reimport"
