"""Which migration files an operation runs, in which order: golang-migrate's semantics.

Pure functions of the files and the current state. Asking for more steps than exist, or a
version no file has, is a UsageError raised before anything runs (golang-migrate applies
what it can and then fails with ErrShortLimit; dbops changes nothing instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.errors import UsageError
from commands.source import NIL_VERSION, Migration, MigrationFile, MigrationSource


@dataclass(frozen=True, kw_only=True)
class Step:
    """Run ``file`` (None: a no-op step) and leave the database at ``target``."""

    migration: Migration
    direction: str
    target: int

    @property
    def file(self) -> MigrationFile | None:
        return self.migration.up if self.direction == "up" else self.migration.down


def _index_of(source: MigrationSource, version: int) -> int:
    """Position of ``version`` in the ordered versions; -1 for NIL_VERSION."""
    if version == NIL_VERSION:
        return -1
    return source.versions.index(version)


def _nearby(source: MigrationSource, version: int) -> str:
    versions = source.versions
    if not versions:
        return "The migrations directory has no migrations."
    below = [v for v in versions if v < version][-2:]
    above = [v for v in versions if v > version][:2]
    shown = ", ".join(str(v) for v in below + above)
    return f"Versions near it: {shown}." if shown else f"Known versions run from {versions[0]} to {versions[-1]}."


def require_version(source: MigrationSource, version: int, *, allow_nil: bool = False) -> None:
    if allow_nil and version == NIL_VERSION:
        return
    if source.get(version) is None:
        raise UsageError(f"No migration file has version {version}. {_nearby(source, version)}")


def plan_up(source: MigrationSource, current: int, limit: int | None) -> list[Step]:
    start = _index_of(source, current) + 1
    pending = source.migrations[start:]
    if limit is not None:
        if limit > len(pending):
            raise UsageError(
                f"up {limit} asks for {limit} migrations, but only {len(pending)} "
                f"{'is' if len(pending) == 1 else 'are'} pending. Nothing was changed."
            )
        pending = pending[:limit]
    return [Step(migration=m, direction="up", target=m.version) for m in pending]


def plan_down(source: MigrationSource, current: int, limit: int | None) -> list[Step]:
    """``limit`` None means all the way down (``down --all``)."""
    position = _index_of(source, current)
    applied = list(source.migrations[: position + 1])
    if limit is not None and limit > len(applied):
        raise UsageError(
            f"down {limit} asks for {limit} migrations, but only {len(applied)} "
            f"{'is' if len(applied) == 1 else 'are'} applied. Nothing was changed."
        )
    steps = []
    for i in range(position, position - (len(applied) if limit is None else limit), -1):
        target = source.migrations[i - 1].version if i > 0 else NIL_VERSION
        steps.append(Step(migration=source.migrations[i], direction="down", target=target))
    return steps


def plan_goto(source: MigrationSource, current: int, target: int) -> list[Step]:
    require_version(source, target)
    here, there = _index_of(source, current), _index_of(source, target)
    if there > here:
        return plan_up(source, current, there - here)
    return plan_down(source, current, here - there)
