"""The migrations directory, read exactly as golang-migrate's file source reads it.

Contract (golang-migrate v4, ``source/file`` + ``source.Parse``):
- a file named ``{version}_{name}.{up|down}.sql`` is a migration; ``version`` is a uint64
  and versions are ordered numerically (``1``, ``02``, ``20260128001`` and ``0`` all occur);
- any other entry (README, sub-directory, a version too large for uint64) is skipped, and
  ``skipped`` says so, so ``validate`` can list what golang-migrate will ignore;
- two files with the same version and direction are an error;
- a version with only an up file has a no-op down step (golang-migrate applies an empty
  migration); ``missing_down`` flags it because rolling it back changes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from commands.errors import MigrationsDirMissing, SourceError

# Matched with fullmatch: Python's "$" also matches before a final newline, Go's does not.
FILENAME = re.compile(r"([0-9]+)_(.*)\.(up|down)\.sql")
MAX_VERSION = 2**64 - 1
NIL_VERSION = -1  # golang-migrate's "no version": schema_migrations has no row


@dataclass(frozen=True, kw_only=True)
class MigrationFile:
    version: int
    name: str
    direction: str  # "up" or "down"
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One version: its up file and its down file, either of which may be missing."""

    version: int
    name: str
    up: MigrationFile | None
    down: MigrationFile | None

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}" if self.name else str(self.version)


@dataclass(frozen=True, kw_only=True)
class SkippedEntry:
    filename: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class MigrationSource:
    directory: Path
    migrations: tuple[Migration, ...]  # ordered by version
    skipped: tuple[SkippedEntry, ...]

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(m.version for m in self.migrations)

    @cached_property
    def _by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}

    def get(self, version: int) -> Migration | None:
        return self._by_version.get(version)

    def previous(self, version: int) -> int:
        """The version before ``version`` in file order (NIL_VERSION before the first)."""
        earlier = [m.version for m in self.migrations if m.version < version]
        return earlier[-1] if earlier else NIL_VERSION

    @property
    def missing_down(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if m.up is not None and m.down is None)

    @property
    def missing_up(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if m.up is None)

    @property
    def last_version(self) -> int:
        return self.migrations[-1].version if self.migrations else NIL_VERSION


def parse_filename(filename: str) -> MigrationFile | SkippedEntry:
    """Classify one directory entry name. Never raises, whatever the name."""
    match = FILENAME.fullmatch(filename)
    if match is None:
        if re.fullmatch(r"[0-9]+_.*\.(up|down)\.[^.]+", filename):
            return SkippedEntry(filename=filename, reason="not a .sql file (golang-migrate's file source would read it; dbops reads .sql only)")
        return SkippedEntry(filename=filename, reason="not named VERSION_NAME.up.sql or VERSION_NAME.down.sql")
    digits = match[1].lstrip("0") or "0"
    if len(digits) > 20 or int(digits) > MAX_VERSION:
        return SkippedEntry(filename=filename, reason="version does not fit in an unsigned 64-bit number")
    return MigrationFile(version=int(digits), name=match[2], direction=match[3], path=Path(filename))


def load_source(directory: str | os.PathLike[str]) -> MigrationSource:
    """Read ``directory``. Raises SourceError if it is unreadable or holds duplicates, and
    MigrationsDirMissing (a SourceError and a ConfigError) if it is not there."""
    directory = Path(directory)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise MigrationsDirMissing(f"Migrations directory {directory} does not exist "
                                   "(migrations_dir in the dbops configuration).") from None
    except NotADirectoryError:
        raise MigrationsDirMissing(f"Migrations path {directory} is not a directory "
                                   "(migrations_dir in the dbops configuration).") from None
    except PermissionError:
        raise SourceError(f"Migrations directory {directory} is not readable by this user.") from None
    except OSError as err:  # a loop of symbolic links, an I/O error
        raise SourceError(f"Migrations directory {directory} cannot be read: {err.strerror or err}.") from None

    files: dict[tuple[int, str], MigrationFile] = {}
    skipped: list[SkippedEntry] = []
    for entry in entries:
        try:
            regular = entry.is_file()
        except OSError as err:  # skipping it could skip a migration: say so instead
            raise SourceError(f"{entry.name} in migrations directory {directory} cannot be read: "
                              f"{err.strerror or err}.") from None
        if not regular:
            skipped.append(SkippedEntry(filename=entry.name, reason="not a regular file"))
            continue
        parsed = parse_filename(entry.name)
        if isinstance(parsed, SkippedEntry):
            skipped.append(parsed)
            continue
        key = (parsed.version, parsed.direction)
        if key in files:
            raise SourceError(
                f"Duplicate migration: {files[key].filename} and {entry.name} are both version "
                f"{parsed.version} {parsed.direction}. golang-migrate refuses this directory too; "
                "rename or remove one of them."
            )
        files[key] = MigrationFile(version=parsed.version, name=parsed.name,
                                   direction=parsed.direction, path=directory / entry.name)

    migrations = []
    for version in sorted({v for v, _ in files}):
        up, down = files.get((version, "up")), files.get((version, "down"))
        migrations.append(Migration(version=version, name=(up or down).name, up=up, down=down))
    return MigrationSource(directory=directory, migrations=tuple(migrations), skipped=tuple(skipped))
