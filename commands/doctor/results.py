"""``/dbops doctor``'s checks and verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from commands.results import Outcome, ResultBase


class Verdict(str, Enum):
    PASS = "pass"
    WARN = "warn"  # works, with a limit or a risk worth knowing
    FAIL = "fail"  # an operation will fail or refuse
    SKIP = "skip"  # not checked: not configured, or what it needs failed first


@dataclass(frozen=True, kw_only=True)
class DoctorCheck:
    """One precondition ``/dbops doctor`` checked. ``detail``: what was found; ``fix``: what
    to change (the privilege to grant, the config key to set), None when nothing needs doing."""

    name: str
    verdict: Verdict
    detail: str
    fix: str | None = None


@dataclass(frozen=True, kw_only=True)
class DoctorResult(ResultBase):
    """``/dbops doctor``: every check in a fixed order; FAILED when any check fails."""

    env: str
    checks: tuple[DoctorCheck, ...]
    outcome: Outcome
    operation: str = "doctor"
