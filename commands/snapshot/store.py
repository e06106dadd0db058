"""Where an environment's snapshots live: a directory, or an S3-compatible object store.

The domain reads and changes snapshots through ``SnapshotStore``; the object store's
adapter (``commands.objstore``) is installed by the composition root with
``use_object_store``, so nothing here imports a storage client.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from contextlib import AbstractContextManager
from typing import BinaryIO, Callable, Protocol

from commands.config import EnvironmentSettings
from commands.errors import SnapshotFailed
from commands.snapshot.snapshots import (DIRECTORY_MODE, FILE_MODE, Listing, Snapshot, delete_files, list_snapshots,
                                         read_manifest, set_pinned, this_host)


class SnapshotStore(Protocol):
    where: str  # how a message names it: a directory, or s3://BUCKET/PREFIX (never a credential)

    def list(self) -> Listing:
        """Every snapshot in the store, newest first, with its orphans and interrupted writes.
        Raises SnapshotFailed (saying why) when the store cannot be read."""

    def manifest(self, snapshot: Snapshot) -> dict:
        """The snapshot's manifest; SnapshotFailed if it cannot be read."""

    def delete(self, snapshot: Snapshot) -> int:
        """Remove the snapshot, data first (from then on it is not listed); its size."""

    def set_pinned(self, snapshot: Snapshot, pinned: bool) -> bool:
        """Pin or unpin; False when it already was as asked."""


class ObjectStore(SnapshotStore, Protocol):
    def writer(self, name: str) -> AbstractContextManager[BinaryIO]:
        """A file to write snapshot ``name``'s data into, sent as it is written, never held
        whole (its ``.name`` is the free name it got, ``name`` or ``name_N``). Leaving it
        cleanly completes the upload; leaving it by an exception aborts it. Until its
        manifest is written the snapshot is not listed; an upload that fails or is
        interrupted leaves nothing listed."""

    def write_manifest(self, name: str, manifest: dict) -> None:
        """Publish ``name`` (``manifest["size"]`` is its data's size): from this moment it is listed."""

    def discard(self, name: str) -> None:
        """Remove ``name``'s data written by ``writer`` (its manifest could not be written)."""

    def open(self, snapshot: Snapshot) -> BinaryIO:
        """The snapshot's data as a stream (read in chunks; never whole)."""

    def tidy(self, env_name: str) -> list[str]:
        """Abort and remove what interrupted creates of ``env_name`` left; what was removed."""

    def bundles(self) -> "BundleStore":
        """The bundles kept beside these snapshots, in the same bucket and prefix."""

    def tidy_bundles(self, env_name: str, *, dry_run: bool = False) -> list[str]:
        """Abort and remove what killed publishes of ``env_name``'s bundles left once their
        writer is gone (``commands.snapshot.bundle_leftovers.abandoned_publish``); their markers'
        names (``dry_run``: what would be). What cannot be removed is logged and left."""

    def probe(self) -> dict[str, str]:
        """Write and delete a tiny object, start and abort a multipart upload under the prefix
        (doctor's check): each refused step ("write", "delete", "start an upload", "abort an
        upload") with the store's error code; empty when all were allowed."""


class LocalStore:
    """A snapshot directory (``snapshot_dir``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.where = str(directory)

    def list(self) -> Listing:
        return list_snapshots(self.directory)

    def manifest(self, snapshot: Snapshot) -> dict:
        return read_manifest(snapshot)

    def delete(self, snapshot: Snapshot) -> int:
        return delete_files(snapshot)

    def set_pinned(self, snapshot: Snapshot, pinned: bool) -> bool:
        return set_pinned(snapshot, pinned)


_object_stores: list[Callable[[EnvironmentSettings], ObjectStore]] = []


def use_object_store(factory: Callable[[EnvironmentSettings], ObjectStore]) -> None:
    """Install the adapter that opens an environment's ``snapshot_url`` (the composition root does)."""
    _object_stores[:] = [factory]


def store_for(env: EnvironmentSettings) -> SnapshotStore | None:
    """``env``'s snapshot store; None when it has none (snapshots off)."""
    if env.snapshot_dir is not None:
        return LocalStore(env.snapshot_dir)
    if env.snapshot_url is None:
        return None
    if not _object_stores:
        raise SnapshotFailed(f"{env.name}'s snapshots are in object storage ({env.snapshot_url}), and this process "
                             "was started without its client.")
    return _object_stores[0](env)


def object_store_for(env: EnvironmentSettings) -> ObjectStore | None:
    """``env``'s object store, or None when its snapshots are in a directory (or off)."""
    return None if env.snapshot_url is None or env.snapshot_dir is not None else store_for(env)  # type: ignore[return-value]


# --- bundles: rows a restore would have lost, kept beside the snapshots (``commands.preserve``) ---

BUNDLE_SUFFIX = ".preserved.zst"
BUNDLE_MANIFEST_SUFFIX = ".preserved.json"
BUNDLE_PIN_SUFFIX = ".preserved.pinned"
BUNDLE_TEMP_PREFIX = ".preserving-"  # not TEMP_PREFIX: a bundle being written is no interrupted snapshot
def writer_temp_name(env_name: str) -> str:
    """The name a bundle of ``env_name`` is written under before it is published (host and pid:
    ``commands.snapshot.bundle_leftovers`` removes it once its writer is gone)."""
    import secrets  # only an export names a file: not loaded by a listing
    return f"{BUNDLE_TEMP_PREFIX}{this_host()}-{os.getpid()}-{env_name}_b{secrets.token_hex(4)}.zst"


def manifest_temp_name(name: str) -> str:
    """The name bundle ``name``'s manifest is written under before it is renamed into place."""
    return f"{BUNDLE_TEMP_PREFIX}{this_host()}-{os.getpid()}-{name}{BUNDLE_MANIFEST_SUFFIX}"


BUNDLE_NAME = re.compile(r"(?P<env>[a-z][a-z0-9_-]{0,39})_(?P<ts>\d{8}_\d{6})_preserved(?:_(?P<n>\d{1,3}))?")


@dataclass(frozen=True, kw_only=True)
class StoredBundle:
    name: str
    size: int
    pinned: bool

    @property
    def created_at(self) -> datetime:
        ts = BUNDLE_NAME.fullmatch(self.name)["ts"]
        return datetime.strptime(ts, "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)

    @property
    def environment(self) -> str | None:
        match = BUNDLE_NAME.fullmatch(self.name)
        return match["env"] if match else None


class BundleStore(Protocol):
    where: str

    def bundles(self) -> list[StoredBundle]:
        """The published bundles (those whose manifest is written), in no particular order."""

    def manifest(self, name: str) -> dict:
        """The bundle's manifest; SnapshotFailed if there is none or it cannot be read."""

    def publish(self, name: str, data: Path, manifest: dict) -> str:
        """Store the finished file ``data`` as bundle ``name`` (or ``name_N`` when taken), its
        manifest last (from then on it is listed); the name it got."""

    def open(self, name: str) -> BinaryIO:
        """The bundle's data as a stream."""

    def delete(self, name: str) -> int:
        """Remove the bundle, manifest first (from then on it is not listed); its size."""

    def set_pinned(self, name: str, pinned: bool) -> bool:
        """Pin or unpin; False when it already was as asked."""


class LocalBundles:
    """Bundles in the snapshot directory: files written under a temporary name, fsynced,
    linked into place (never over another), then the manifest; 0600, links never followed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.where = str(directory)

    def bundles(self) -> list[StoredBundle]:
        try:
            with os.scandir(self.directory) as it:
                entries = {e.name: e for e in it if e.is_file(follow_symlinks=False)}
        except FileNotFoundError:
            return []
        except OSError as err:
            raise SnapshotFailed(f"{self.directory} cannot be read: {err.strerror or err}.") from None
        names = {n[: -len(BUNDLE_SUFFIX)]: e for n, e in entries.items() if n.endswith(BUNDLE_SUFFIX)}
        return [StoredBundle(name=name, size=e.stat().st_size, pinned=name + BUNDLE_PIN_SUFFIX in entries)
                for name, e in names.items()
                if BUNDLE_NAME.fullmatch(name) and name + BUNDLE_MANIFEST_SUFFIX in entries]

    def manifest(self, name: str) -> dict:
        try:
            fd = os.open(self.directory / (name + BUNDLE_MANIFEST_SUFFIX), os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError) as err:
            raise SnapshotFailed(f"The manifest of bundle {name} cannot be read "
                                 f"({getattr(err, 'strerror', None) or err}).") from None
        if not isinstance(manifest, dict):
            raise SnapshotFailed(f"The manifest of bundle {name} cannot be read (not a JSON object).")
        return manifest

    def publish(self, name: str, data: Path, manifest: dict) -> str:
        self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        for n in range(1, 100):
            final = f"{name}{'' if n == 1 else f'_{n}'}"
            try:
                os.link(data, self.directory / (final + BUNDLE_SUFFIX))
                break
            except FileExistsError:
                continue
        else:
            raise SnapshotFailed(f"Could not find a free name for bundle {name} in {self.directory}.")
        temp = self.directory / manifest_temp_name(final)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**manifest, "name": final}, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.directory / (final + BUNDLE_MANIFEST_SUFFIX))
        except BaseException:
            temp.unlink(missing_ok=True)
            (self.directory / (final + BUNDLE_SUFFIX)).unlink(missing_ok=True)
            raise
        return final

    def open(self, name: str) -> BinaryIO:
        try:
            return os.fdopen(os.open(self.directory / (name + BUNDLE_SUFFIX), os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except OSError as err:
            raise SnapshotFailed(f"Bundle {name} cannot be read: {err.strerror or err}.") from None

    def delete(self, name: str) -> int:
        data = self.directory / (name + BUNDLE_SUFFIX)
        size = data.stat().st_size if data.exists() else 0
        for suffix in (BUNDLE_MANIFEST_SUFFIX, BUNDLE_SUFFIX, BUNDLE_PIN_SUFFIX):
            (self.directory / (name + suffix)).unlink(missing_ok=True)
        return size

    def set_pinned(self, name: str, pinned: bool) -> bool:
        marker = self.directory / (name + BUNDLE_PIN_SUFFIX)
        if pinned == marker.exists():
            return False
        if pinned:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
        else:
            marker.unlink()
        return True


def bundle_store_for(env: EnvironmentSettings) -> BundleStore | None:
    """Where ``env``'s bundles live: beside its snapshots (None when it has no place for them)."""
    if env.snapshot_dir is not None:
        return LocalBundles(env.snapshot_dir)
    store = store_for(env)
    return None if store is None else store.bundles()  # type: ignore[union-attr]


def expired_bundles(env: EnvironmentSettings, *, now: datetime, retention_days: int) -> list[StoredBundle]:
    """``env``'s bundles that cleanup deletes, by the snapshots' rules: older than
    ``retention_days``, except the newest ``keep_last`` and pinned ones."""
    store = bundle_store_for(env)
    if store is None:
        return []
    own = sorted((b for b in store.bundles() if b.environment == env.name), key=lambda b: b.name, reverse=True)
    cutoff = now - timedelta(days=retention_days)
    return [b for b in own[env.keep_last:] if not b.pinned and b.created_at < cutoff]
