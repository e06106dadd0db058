"""Faults. Refusals (lock held, dirty state, nothing to do) are Result values, not these.

    CommandError                 anything dbops could not do; the message is for the user
    ├── UsageError               the command text or its arguments are wrong (exit 2)
    ├── ConfigError              the configuration file is missing, unreadable or invalid (exit 2)
    │   └── MigrationsDirMissing the migrations_dir it names is not there (a SourceError too)
    ├── SourceError              the migrations directory cannot be used as golang-migrate would
    ├── DatabaseError            PostgreSQL could not be reached or answered with an error
    │   ├── DatabaseUnreachable  no session could be opened, or the one in use was lost
    │   └── PrivilegeError       the database role lacks a privilege a statement needed
    ├── VersionTableError        schema_migrations is not as golang-migrate leaves it
    ├── ScratchFailed            the files up to a version do not apply to an empty database
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


class DatabaseUnreachable(DatabaseError):
    """A database could not be connected to, or the connection was lost. ``database`` names
    which one, as the message starts: "control database" or "environment NAME"."""

    def __init__(self, message: str, *, database: str) -> None:
        super().__init__(message)
        self.database = database


class PrivilegeError(DatabaseError):
    """PostgreSQL refused a statement for a privilege dbops' role lacks (SQLSTATE 42501), in the
    middle of an operation: the statement's transaction was rolled back. The up-front checks
    (``commands.privileges``) refuse what the catalogs can tell before anything changes; this
    is what they cannot."""


# PostgreSQL's SQLSTATE for "insufficient privilege" (permission denied, must be owner of …).
INSUFFICIENT_PRIVILEGE = "42501"
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out


def privilege_error(message: str) -> PrivilegeError:
    """The fault for PostgreSQL's own privilege ``message`` (one line, already masked)."""
    return PrivilegeError(f"PostgreSQL said: {message}. The statement was rolled back; /dbops doctor names each "
                          "privilege the role lacks and the GRANT (or setting) that gives it.")


class VersionTableError(CommandError):
    """schema_migrations has more than one row: no tool can tell which version is true."""


class ScratchFailed(CommandError):
    """The files up to the version did not apply to an empty database (or none could be made)."""


class SnapshotFailed(CommandError):
    """A snapshot could not be made, read or restored; the message says why and what was kept."""
