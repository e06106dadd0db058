"""Snapshots in a directory: names, listing, and which ones cleanup may delete.

A dbops snapshot is two files: ``NAME.dump.zst`` (pg_dump's custom format, zstd-compressed)
and ``NAME.manifest.json``. The manifest is written last, so it marks a complete snapshot:
data without a manifest is an interrupted run, never listed. Everything the list shows is
in the name (environment, time, version, reason), so listing 10,000 snapshots reads one
directory and never opens a file.

Legacy snapshots (``togather_<db>_<YYYYMMDD_HHMMSS>_<reason>.sql.gz``, plain SQL, with an
optional ``.meta.json`` sidecar) are listed and restorable as they are. Several environments
may share one directory (``snapshot_scope`` says which files each may act on). Temporary files
carry the host and pid that write them (``.tmp-HOST-PID-NAME…``): only their host judges them
by pid. Every file dbops writes here is 0600 and opened without following links.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from commands.errors import CommandError, SnapshotFailed, UsageError
from commands.snapshot.results import SnapshotInfo
from commands.units import human_size

DATA_SUFFIX = ".dump.zst"
MANIFEST_SUFFIX = ".manifest.json"
PIN_SUFFIX = ".pinned"
LEGACY_SUFFIX = ".sql.gz"
LEGACY_SIDECAR = ".meta.json"
TEMP_PREFIX = ".tmp-"

_NAME = re.compile(
    r"(?P<env>[a-z][a-z0-9_-]{0,39})_(?P<ts>\d{8}_\d{6})_v(?P<version>none|\d{1,20})(?P<dirty>-dirty)?"
    r"_(?P<slug>[a-z0-9-]{1,80})(?:_(?P<n>\d{1,3}))?"
)
_LEGACY = re.compile(r"togather_(?P<db>.+?)_(?P<ts>\d{8}_\d{6})(?:_(?P<slug>[^/]*))?")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
# .tmp-HOST-PID-NAME.dump.zst / .manifest.json: NAME starts with a letter, so HOST (which may
# hold "-" and digits) and PID split one way only. Older dbops wrote .tmp-PID-NAME… (no HOST).
_TEMP = re.compile(r"\.tmp-(?:(?P<host>[A-Za-z0-9.-]{1,64}?)-)??(?P<pid>\d{1,10})-(?P<name>[a-z][a-z0-9_-]{0,200})"
                   r"(?:\.dump\.zst|\.manifest\.json)")
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    name: str
    kind: str  # "dbops" or "legacy"
    directory: Path | None  # None: it lives in ``store`` (object storage)
    filename: str  # the data file's name
    created_at: datetime
    size: int
    reason: str
    version: int | None  # the migration version when it was taken (-1: none applied); None if unknown (legacy)
    dirty: bool
    pinned: bool
    written_ns: int = 0  # the file's mtime: orders snapshots taken within the same second
    environment: str | None = None  # dbops: the environment its name begins with; legacy: None
    store: Any = None  # the commands.snapshot.store.SnapshotStore it lives in, when that is not a directory
    entry: str = ""  # object storage: its manifest's object, when that is not NAME.manifest.json beside the data

    @property
    def path(self) -> Path:
        """The data file (built on demand: listing 10,000 snapshots builds no Path)."""
        if self.directory is None:
            raise SnapshotFailed(f"{self.name} is in object storage, not in a directory.")
        return self.directory / self.filename

    @property
    def legacy_db(self) -> str | None:
        """A legacy snapshot's <db> (``togather_<db>_…``); None for a dbops one."""
        return legacy_db_in_name(self.name) if self.kind == "legacy" else None

    def age(self, now: datetime) -> timedelta:
        return now - self.created_at

    def info(self) -> SnapshotInfo:
        """What a surface shows of it."""
        return SnapshotInfo(name=self.name, kind=self.kind, created_at=self.created_at, size=self.size,
                            reason=self.reason, version=self.version, dirty=self.dirty, pinned=self.pinned)


@dataclass(frozen=True, kw_only=True)
class Created:
    name: str
    path: Path | None  # None: written to object storage
    manifest: dict


@dataclass(frozen=True, kw_only=True)
class Verified:
    ok: bool
    checks: tuple[tuple[str, bool, str], ...]  # (check, passed, detail)


@dataclass(frozen=True, kw_only=True)
class Restored:
    database: str
    mode: str
    kept_database: str | None  # new-database mode: the old database, kept for undo
    kept_size: int | None = None  # its size on the server, bytes, when the server says
    duration_ms: float
    jobs: int = 1  # pg_restore's parallel jobs; 1: one transaction
    abandoned_dropped: tuple[str, ...] = ()  # new-database mode: what killed restores had left, dropped first


@dataclass(frozen=True, kw_only=True)
class Listing:
    snapshots: tuple[Snapshot, ...]  # newest first
    orphans: tuple[str, ...]         # sidecars or manifests without their data file
    incomplete: tuple[str, ...]      # data without a manifest, temporary files: interrupted runs


def slug(reason: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")
    return (text[:80].rstrip("-") or "manual")


def snapshot_name(env: str, when: datetime, version: int | None, dirty: bool, reason: str) -> str:
    vtag = "none" if version is None or version < 0 else str(version)
    return f"{env}_{when.astimezone(timezone.utc):%Y%m%d_%H%M%S}_v{vtag}{'-dirty' if dirty else ''}_{slug(reason)}"


def this_host() -> str:
    """This host's name as temporary file names carry it (letters, digits, '.', '-')."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64].strip("-") or "localhost"


def temp_name(name: str, suffix: str) -> str:
    """The name a file of snapshot ``name`` is written under before it is published."""
    return f"{TEMP_PREFIX}{this_host()}-{os.getpid()}-{name}{suffix}"


def parse_temp(filename: str) -> tuple[str | None, int, str] | None:
    """(host, pid, snapshot name) of a temporary name dbops generates (host None: an older
    dbops wrote it, on a host it did not name); None for any other name."""
    match = _TEMP.fullmatch(filename)
    if match is None or not is_dbops_name(match["name"]):
        return None
    return match["host"], int(match["pid"]), match["name"]


def is_dbops_name(name: str) -> bool:
    """Whether ``name`` is a snapshot name dbops generates (``snapshot_name``, maybe ``_N``)."""
    return _NAME.fullmatch(name) is not None


def environment_in_name(name: str) -> str | None:
    """The environment a dbops snapshot name (or a file name built from one) begins with."""
    match = _NAME.match(name)
    return match["env"] if match else None


def legacy_db_in_name(name: str) -> str | None:
    """The <db> of a legacy name ``togather_<db>_<ts>…`` (a file name with a suffix will do)."""
    match = _LEGACY.match(name)
    return match["db"] if match else None


def check_name(name: str) -> str:
    """A snapshot name as a user typed it: refused unless it is a plain file name.

    Nothing the user types can name a path outside the snapshot directory: no separators,
    no ``..``, no NUL or control characters, no leading dot.
    """
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        shown = repr(name if len(name) <= 60 else name[:57] + "…")
        raise UsageError(f"{shown} is not a snapshot name. Names are shown by `/snapshot list` "
                         "(letters, digits, '.', '_' and '-'; no paths).")
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX, LEGACY_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _utc(ts: str) -> datetime:
    """YYYYMMDD_HHMMSS as UTC (by hand: strptime was half the time of listing 10,000)."""
    return datetime(int(ts[0:4]), int(ts[4:6]), int(ts[6:8]), int(ts[9:11]), int(ts[11:13]), int(ts[13:15]),
                    tzinfo=timezone.utc)


def list_snapshots(directory: Path) -> Listing:
    """Everything in ``directory``, newest first. A missing directory has no snapshots; one
    that cannot be read is a SnapshotFailed saying why. Links are never listed."""
    try:
        with os.scandir(directory) as it:
            entries = {e.name: e for e in it if e.is_file(follow_symlinks=False)}
    except FileNotFoundError:
        return Listing(snapshots=(), orphans=(), incomplete=())
    except OSError as err:  # a loop of symbolic links, not a directory, an I/O error
        raise SnapshotFailed(f"Snapshot directory {directory} cannot be read: {err.strerror or err}. Check that it "
                             "is a directory dbops' user may read.") from None
    return listing_of(entries, _file_facts, directory=directory)


def _file_facts(entry: os.DirEntry) -> tuple[int, int]:
    facts = entry.stat()
    return facts.st_size, facts.st_mtime_ns


Entry = TypeVar("Entry")


def listing_of(entries: Mapping[str, Entry], facts: Callable[[Entry], tuple[int, int]], *,
               directory: Path | None, store: Any = None) -> Listing:
    """The snapshots among ``entries`` (file or object name -> entry), newest first.
    ``facts(entry)`` is (size, written_ns), asked only of the data files that are listed."""
    snapshots: list[Snapshot] = []
    orphans: list[str] = []
    incomplete: list[str] = []
    for filename, entry in entries.items():
        if filename.startswith(TEMP_PREFIX):
            incomplete.append(filename)
        elif filename.endswith(DATA_SUFFIX):
            name = filename[: -len(DATA_SUFFIX)]
            match = _NAME.fullmatch(name)
            if name + MANIFEST_SUFFIX not in entries or match is None:
                incomplete.append(filename)
                continue
            size, written_ns = facts(entry)
            snapshots.append(_dbops(match, filename=filename, size=size, written_ns=written_ns,
                                    pinned=name + PIN_SUFFIX in entries, directory=directory, store=store))
        elif filename.endswith(MANIFEST_SUFFIX):
            if filename[: -len(MANIFEST_SUFFIX)] + DATA_SUFFIX not in entries:
                orphans.append(filename)
        elif filename.endswith(LEGACY_SUFFIX):
            name = filename[: -len(LEGACY_SUFFIX)]
            match = _LEGACY.fullmatch(name)
            if match is None:
                continue
            size, written_ns = facts(entry)
            snapshots.append(Snapshot(
                name=name, kind="legacy", directory=directory, filename=filename, created_at=_utc(match["ts"]),
                size=size, written_ns=written_ns, reason=(match["slug"] or "").replace("_", " ").strip() or "legacy",
                version=None, dirty=False, pinned=name + PIN_SUFFIX in entries, store=store))
        elif filename.endswith(LEGACY_SIDECAR):
            if filename[: -len(LEGACY_SIDECAR)] + LEGACY_SUFFIX not in entries:
                orphans.append(filename)
    snapshots.sort(key=newest_first_key, reverse=True)
    return Listing(snapshots=tuple(snapshots), orphans=tuple(sorted(orphans)), incomplete=tuple(sorted(incomplete)))


def dbops_snapshot(name: str, *, filename: str, size: int, written_ns: int, pinned: bool, directory: Path | None,
                   store: Any = None, entry: str = "") -> Snapshot:
    """The snapshot a dbops name describes (``is_dbops_name(name)`` must hold): everything but
    its size, write time and pin is in the name."""
    return _dbops(_NAME.fullmatch(name), filename=filename, size=size, written_ns=written_ns, pinned=pinned,
                  directory=directory, store=store, entry=entry)


def _dbops(match: re.Match, *, filename: str, size: int, written_ns: int, pinned: bool, directory: Path | None,
           store: Any, entry: str = "") -> Snapshot:
    return Snapshot(
        name=match[0], kind="dbops", directory=directory, filename=filename, created_at=_utc(match["ts"]),
        size=size, written_ns=written_ns, reason=match["slug"].replace("-", " "),
        version=-1 if match["version"] == "none" else int(match["version"]),
        dirty=bool(match["dirty"]), pinned=pinned, environment=match["env"], store=store, entry=entry)


def newest_first_key(snapshot: Snapshot) -> tuple:
    return snapshot.created_at, snapshot.written_ns, snapshot.name


def find(listing: Listing, name: str) -> Snapshot:
    wanted = check_name(name)
    for snapshot in listing.snapshots:
        if snapshot.name == wanted:
            return snapshot
    raise UsageError(f"No snapshot named {wanted!r}. `/snapshot list` shows the available ones.")


@dataclass(frozen=True, kw_only=True)
class CleanupPlan:
    delete: tuple[Snapshot, ...]
    keep: tuple[tuple[Snapshot, str], ...]  # each kept snapshot with why


def plan_cleanup(snapshots: tuple[Snapshot, ...], *, now: datetime, retention_days: int, keep_last: int,
                 current_version: int | None) -> CleanupPlan:
    """Which snapshots cleanup deletes: older than ``retention_days``, except

    - the newest ``keep_last`` (whatever their age);
    - pinned ones;
    - the newest snapshot taken before the migration the database is now at (the one a
      rollback of that migration would restore: its version is below the current one).
    """
    newest_first = sorted(snapshots, key=newest_first_key, reverse=True)
    protected: dict[str, str] = {}
    for snapshot in newest_first[:keep_last]:
        protected[snapshot.name] = f"one of the newest {keep_last}"
    if current_version is not None and current_version >= 0:
        before = [s for s in newest_first if s.version is not None and s.version < current_version]
        if before:
            protected.setdefault(before[0].name, f"the newest taken before version {current_version}")
    cutoff = now - timedelta(days=retention_days)
    delete, keep = [], []
    for snapshot in newest_first:
        if snapshot.pinned:
            keep.append((snapshot, "pinned"))
        elif snapshot.name in protected:
            keep.append((snapshot, protected[snapshot.name]))
        elif snapshot.created_at >= cutoff:
            keep.append((snapshot, f"younger than {retention_days} days"))
        else:
            delete.append(snapshot)
    return CleanupPlan(delete=tuple(delete), keep=tuple(keep))


def delete_files(snapshot: Snapshot) -> int:
    """Remove a snapshot's files, data first: from that moment it is no longer listed."""
    if snapshot.store is not None:
        return snapshot.store.delete(snapshot)
    snapshot.path.unlink(missing_ok=True)
    for suffix in (MANIFEST_SUFFIX, LEGACY_SIDECAR, PIN_SUFFIX):
        snapshot.path.with_name(snapshot.name + suffix).unlink(missing_ok=True)
    return snapshot.size


def diagnose_os(err: OSError, directory: Path, db_size: int | None = None) -> str:
    """A file error in the snapshot directory as the user's problem and its fix (the guide's Issue 6)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = 0
        size = f"; the database is {human_size(db_size)}" if db_size else ""
        return (f"Not enough disk space: {directory} has {human_size(free)} free{size}. Nothing was kept. "
                "Delete old snapshots (`/snapshot cleanup`) or give the directory more space.")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "is on a read-only file system" if err.errno == errno.EROFS else "is not writable by dbops"
        return f"No permission: {directory} {what} ({err.strerror}). Nothing was kept."
    if err.errno == errno.ELOOP:
        return (f"Cannot write the snapshot in {directory}: {err.filename or 'a file'} is a link, and dbops does not "
                "follow links out of the snapshot directory. Nothing was kept.")
    return f"Cannot write the snapshot in {directory}: {err.strerror or err}. Nothing was kept."


def set_pinned(snapshot: Snapshot, pinned: bool) -> bool:
    """Pin or unpin; returns False when it already was as asked.

    The marker is a regular file or nothing: a link (or anything else) at its name is never
    followed, written through or removed; that is refused, with what to do.
    """
    if snapshot.store is not None:
        return snapshot.store.set_pinned(snapshot, pinned)
    marker = snapshot.path.with_name(snapshot.name + PIN_SUFFIX)
    try:
        mode = os.lstat(marker).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise SnapshotFailed(f"{marker} is not a regular file (a link, or something made by hand). dbops does not "
                             "follow links out of the snapshot directory: remove it, then pin or unpin again.")
    if pinned == (mode is not None):
        return False
    if pinned:
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
        except FileExistsError:
            return False  # pinned at the same moment by someone else
    else:
        marker.unlink(missing_ok=True)
    return True


def manifest_if_readable(snapshot: Snapshot) -> dict:
    """The manifest, or {} (legacy, or unreadable): for what only adds to a report."""
    try:
        return read_manifest(snapshot) if snapshot.kind == "dbops" else {}
    except CommandError:
        return {}


def read_manifest(snapshot: Snapshot) -> dict:
    """The snapshot's manifest (never through a link). SnapshotFailed if it cannot be read."""
    if snapshot.store is not None:
        return snapshot.store.manifest(snapshot)
    path = snapshot.path.with_name(snapshot.name + MANIFEST_SUFFIX)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "r", encoding="utf-8") as fh:
            manifest = json.load(fh)
    except OSError as err:
        why = "it is a link" if err.errno == errno.ELOOP else err.strerror or str(err)
        raise SnapshotFailed(f"The manifest of {snapshot.name} cannot be read ({why}).") from None
    except ValueError as err:
        raise SnapshotFailed(f"The manifest of {snapshot.name} cannot be read ({err}).") from None
    if not isinstance(manifest, dict):
        raise SnapshotFailed(f"The manifest of {snapshot.name} cannot be read (not a JSON object).")
    return manifest
