"""deploy.sh's lock directories: read them, and take a stale one away.

deploy.sh takes its migration lock with ``mkdir /tmp/togather-migration-ENV.lock`` (atomic)
and removes it with ``rmdir`` when it is done; a crash leaves it behind, and the next deploy
refuses to run. A lock directory may record when it was taken in a ``locked_at`` file (ISO
8601 or Unix seconds) and who took it in a ``pid`` file; without ``locked_at`` the
directory's own modification time (when it was made) is used.

Paths come only from the configuration (``lock_dirs``), never from what a user typed.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from commands.errors import CommandError
from commands.results import LockDirInfo

LOCKED_AT_FILE = "locked_at"
PID_FILE = "pid"


def _read(path: Path, limit: int = 200) -> str | None:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return fh.read(limit).strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def _locked_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def inspect(path: Path, *, now: datetime, timeout: timedelta) -> LockDirInfo:
    """What the lock directory at ``path`` says now; ``stale`` when it is older than
    ``timeout`` and the process it records is not alive (a lock without a pid: age alone)."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return LockDirInfo(path=str(path), exists=False)
    except OSError as err:  # a loop of symbolic links above it, an I/O error
        raise CommandError(f"Lock directory {path} cannot be checked: {err.strerror or err}.") from None
    if not path.is_dir() or path.is_symlink():
        return LockDirInfo(path=str(path), exists=True)
    locked_at, source = _locked_at(_read(path / LOCKED_AT_FILE)), "file"
    if locked_at is None:
        locked_at, source = datetime.fromtimestamp(stat.st_mtime, timezone.utc), "mtime"
    pid_text = _read(path / PID_FILE)
    pid = int(pid_text) if pid_text and pid_text.isdigit() and len(pid_text) < 10 else None
    alive = pid_alive(pid) if pid is not None else None
    return LockDirInfo(path=str(path), exists=True, locked_at=locked_at, locked_at_source=source, pid=pid,
                       pid_alive=alive, stale=now - locked_at >= timeout and not alive)


def why_kept(info: LockDirInfo, *, advisory_lock_held: bool) -> str | None:
    """Why the lock directory must stay, or None when it may be removed."""
    if not info.exists:
        return "dir_absent"
    if info.locked_at is None:
        return "dir_not_a_directory"
    if info.pid_alive:
        return "dir_owner_alive"
    if not info.stale:
        return "dir_fresh"
    if info.pid is None and advisory_lock_held:
        return "dir_unknown_owner_lock_held"  # no pid to check, and someone is migrating
    return None


def remove(info: LockDirInfo) -> bool:
    """Take the lock directory away: renamed aside first (atomic, so a deploy that takes the
    lock again at this moment gets a fresh directory, not half of ours), then deleted."""
    path = Path(info.path)
    aside = path.with_name(f".{path.name}.released-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True


def stamp(path: Path) -> str | None:
    """What identifies this taking of the lock (its ``locked_at``), for an approval to bind to."""
    info = inspect(path, now=datetime.now(timezone.utc), timeout=timedelta(0))
    return info.locked_at.isoformat() if info.locked_at else None


def take(paths: tuple[Path, ...], *, now: datetime) -> list[Path] | LockDirInfo:
    """Take every lock directory as deploy.sh does (``mkdir``, atomic), recording when and who,
    so a deploy that starts meanwhile waits for dbops. Returns the directories taken, or the
    one already held (having given back those taken before it)."""
    taken: list[Path] = []
    for path in paths:
        try:
            path.mkdir()
        except FileExistsError:
            release(taken)
            return inspect(path, now=now, timeout=timedelta.max)
        except OSError as err:  # a loop of symbolic links above it, a missing parent: nothing is held
            release(taken)
            raise CommandError(f"Lock directory {path} cannot be taken: {err.strerror or err}. "
                               "Nothing was changed.") from None
        taken.append(path)
        (path / LOCKED_AT_FILE).write_text(now.isoformat(timespec="seconds") + "\n", encoding="utf-8")
        (path / PID_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
    return taken


def release(taken: list[Path]) -> None:
    """Give back lock directories this process took (``take``)."""
    for path in reversed(taken):
        for name in (LOCKED_AT_FILE, PID_FILE):
            (path / name).unlink(missing_ok=True)
        try:
            path.rmdir()
        except OSError:
            pass  # someone put something in it: leave it for a person (lock status shows it)
