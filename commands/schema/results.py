"""The results of schema truth: ``/migrate drift``, which version the schema is, ``/migrate baseline``."""

from __future__ import annotations

from dataclasses import dataclass

from commands.results import Outcome, ResultBase, State
from commands.schema.compare import Difference


@dataclass(frozen=True, kw_only=True)
class DriftResult(ResultBase):
    """The live schema against the expected schema of the recorded version.

    ``unmeasured`` says why nothing was compared, when nothing was: "dirty" (the recorded
    version is half applied), "no_version" (nothing recorded) or "unknown_version" (no file
    has the recorded version). Otherwise ``differences`` is every difference, in order (empty:
    no drift), ``built_on`` where the expected schema was built (or "cache"), and the two
    majors say whether it was built on another PostgreSQL than the live one. ``outcome``: done
    (no drift), failed (drift found: a script's check fails), refused (not measured).
    """

    env: str
    state: State
    differences: tuple[Difference, ...] = ()
    unmeasured: str | None = None
    built_on: str | None = None       # "scratch_database_url", "the managed server", "embedded PostgreSQL"
    cached: bool = False              # the expected schema came from the control database's cache
    expected_major: int | None = None
    live_major: int | None = None
    latest_file_version: int | None = None
    outcome: Outcome = Outcome.DONE
    operation: str = "drift"

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


@dataclass(frozen=True, kw_only=True)
class BaselineResult(ResultBase):
    """``/migrate baseline V``: ``version`` recorded (clean) because the live schema is exactly
    its expected schema (done), already recorded (no change), or refused with the
    ``differences`` (live against version V) and nothing recorded."""

    env: str
    version: int
    before: State
    after: State
    differences: tuple[Difference, ...] = ()
    snapshot: str | None = None
    outcome: Outcome = Outcome.DONE
    operation: str = "baseline"


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """An object the failed file created that the previous version does not have."""

    kind: str                  # "index", "table", or another kind (never removable)
    name: str                  # as the schema names it: ``idx_x``, ``audit.events``
    invalid: bool = False      # an index a failed CONCURRENTLY build left INVALID
    removable: bool = False    # dropping it loses no data: an index, an empty table
    why_not: str | None = None
    statement: str | None = None  # the DROP that removes it (removable only)

    @property
    def schema_and_name(self) -> tuple[str, str]:
        schema, _, name = self.name.rpartition(".")
        return schema or "public", name


@dataclass(frozen=True, kw_only=True)
class SchemaVersion:
    """The answer. ``matches``: the version the live schema is exactly (NIL_VERSION: it has
    nothing a migration makes), else None and ``closest`` the nearest compared, with the
    ``differences`` (live against it). ``failed``: the dirty version, ``present``/``missing``
    the objects its file creates that exist or not, and ``leftovers`` the objects that stand
    between the live schema and version ``failed``'s previous one, when only such objects do.
    ``error``: why it could not be told (an expected schema could not be built)."""

    matches: int | None = None
    closest: int | None = None
    differences: tuple[Difference, ...] = ()
    compared: tuple[int, ...] = ()
    bounded: bool = False
    failed: int | None = None
    previous: int | None = None
    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    leftovers: tuple[Leftover, ...] = ()
    error: str | None = None

    @property
    def recoverable(self) -> bool:
        """The schema is version ``previous`` once the leftovers (all removable) are dropped."""
        if self.failed is None or self.previous is None:
            return False
        if self.matches == self.previous:
            return True
        return (self.matches is None and self.closest == self.previous and bool(self.leftovers)
                and all(item.removable for item in self.leftovers))
