"""Where snapshots may live, as the composition roots install it."""

from __future__ import annotations

import threading

from commands.config import EnvironmentSettings
from commands.snapshot.store import ObjectStore, use_object_store

_opened: dict[tuple[str, str | None], ObjectStore] = {}
_lock = threading.Lock()


def _open_object_store(env: EnvironmentSettings) -> ObjectStore:
    """One store (one S3 client: thread-safe, and tens of milliseconds to make) per bucket,
    prefix and endpoint, for the life of the process."""
    key = (env.snapshot_url, env.s3_endpoint_url)
    with _lock:
        if key not in _opened:
            from commands.objstore.s3 import S3Store  # boto3 is loaded by a process that uses a snapshot_url only
            _opened[key] = S3Store.for_env(env)
        return _opened[key]


def use_snapshot_stores() -> None:
    """Let ``snapshot_url = "s3://…"`` environments reach their object store."""
    use_object_store(_open_object_store)
