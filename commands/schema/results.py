"""The result of ``/migrate drift``."""

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
