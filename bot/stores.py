"""Where snapshots may live, as the composition roots install it."""

from __future__ import annotations

from commands.config import EnvironmentSettings
from commands.snapshot.store import ObjectStore, use_object_store


def _open_object_store(env: EnvironmentSettings) -> ObjectStore:
    from commands.objstore.s3 import S3Store  # boto3 is loaded by a process that uses a snapshot_url, not by every one
    return S3Store.for_env(env)


def use_snapshot_stores() -> None:
    """Let ``snapshot_url = "s3://…"`` environments reach their object store."""
    use_object_store(_open_object_store)
