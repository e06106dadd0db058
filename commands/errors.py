"""Faults. Refusals (lock held, dirty state, nothing to do) are Result values, not these.

    CommandError                 anything dbops could not do; the message is for the user
    ├── UsageError               the command text or its arguments are wrong (exit 2)
    ├── ConfigError              the configuration file is missing, unreadable or invalid (exit 2)
    │   └── MigrationsDirMissing the migrations_dir it names is not there (a SourceError too)
    ├── SourceError              the migrations directory cannot be used as golang-migrate would
    ├── DatabaseError            PostgreSQL could not be reached or answered with an error
    ├── VersionTableError        schema_migrations is not as golang-migrate leaves it
    └── SnapshotFailed           a snapshot could not be made or restored; nothing was changed

Each surface catches CommandError once and renders its message; nothing below a surface
prints.
"""

from __future__ import annotations


class CommandError(Exception):
    """A fault with a message fit to show a user as is (no secrets, no tracebacks)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n{self.hint}"


class UsageError(CommandError):
    """The command text is not in the grammar; ``usage`` holds the lines that would have been,
    in no surface's syntax (``commands.usage``): each surface words them."""

    exit_code = 2

    def __init__(self, message: str, *, usage: str | tuple[str, ...] | None = None) -> None:
        lines = (usage,) if isinstance(usage, str) else usage
        super().__init__(message, hint=f"Usage: {'  or  '.join(lines)}" if lines else None)
        self.usage = lines


class ConfigError(CommandError):
    exit_code = 2


class SourceError(CommandError):
    pass


class MigrationsDirMissing(ConfigError, SourceError):
    """The migrations directory is not there, or is not a directory: the configuration names
    the wrong path (exit 2, as every configuration problem), rather than files that are wrong."""


class DatabaseError(CommandError):
    pass


class VersionTableError(CommandError):
    """schema_migrations has more than one row: no tool can tell which version is true."""


class SnapshotFailed(CommandError):
    """A snapshot could not be made, read or restored; the message says why and what was kept."""
