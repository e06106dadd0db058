"""Where an environment's snapshots live: a directory, or an S3-compatible object store.

The domain reads and changes snapshots through ``SnapshotStore``; the object store's
adapter (``commands.objstore``) is installed by the composition root with
``use_object_store``, so nothing here imports a storage client.
"""

from __future__ import annotations

from pathlib import Path
from contextlib import AbstractContextManager
from typing import BinaryIO, Callable, Protocol

from commands.config import EnvironmentSettings
from commands.errors import SnapshotFailed
from commands.snapshot.snapshots import Listing, Snapshot, delete_files, list_snapshots, read_manifest, set_pinned


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
