"""Lock status and release: the migration lock and deploy scripts' lock directories."""

from __future__ import annotations

from dataclasses import dataclass

from commands.results import LockDirInfo, LockHolder, Outcome, ResultBase


@dataclass(frozen=True, kw_only=True)
class LockStatusResult(ResultBase):
    """``/dbops lock status``: the migration lock's holder and the configured lock directories."""

    env: str
    holder: LockHolder | None
    stale_after_minutes: int
    lock_dirs: tuple[LockDirInfo, ...]
    lock_dir_timeout_minutes: int
    outcome: Outcome = Outcome.DONE
    operation: str = "lock status"


@dataclass(frozen=True, kw_only=True)
class LockReleaseResult(ResultBase):
    """``/dbops lock release``: what was released, and what was not and why.

    ``terminated``: the idle holder's pid whose session was ended. ``refused``: a code per
    lock kept ("holder_active", "holder_idle_briefly", "dir_fresh", "dir_owner_alive",
    "dir_unknown_owner_lock_held"); ``removed``: the lock directories taken away.
    """

    env: str
    holder: LockHolder | None
    terminated: int | None
    removed: tuple[LockDirInfo, ...]
    kept: tuple[tuple[str, str], ...]   # (what: "advisory lock" or a path, why: a code above)
    outcome: Outcome
    operation: str = "lock release"
