"""What a killed ``--preserve`` export leaves, named so that it can be found and removed once
its writer is gone (as ``commands.pg.dump.remove_leftovers`` does for snapshots).

A bundle is written to ``.preserving-HOST-PID-ENV_bXXXXXXXX.zst`` (in the snapshot directory,
or the system's temporary directory when the snapshots are in object storage); in a directory
it is linked into place as ``NAME.preserved.zst``, then its manifest is written to
``.preserving-HOST-PID-NAME.preserved.json`` and renamed into place; in a bucket, an empty
object of that name marks the publish while the data goes up, and goes once the manifest is
there (``commands.snapshot.store.writer_temp_name``, ``manifest_temp_name``). A process killed
on the way leaves one of those, listed nowhere, or an unfinished multipart upload.

A temporary file or marker is its writer's until the writer is gone: on this host, when its
pid is no longer alive; from another host (a shared directory or bucket, where a pid means
nothing) or from a dbops before names carried the host, once untouched for
FOREIGN_AGE_SECONDS. A linked bundle whose manifest never came goes once untouched for
UNPUBLISHED_AGE_SECONDS (a publish takes a moment). Only ``env``'s are touched, but for an
older dbops's writer file, which names no environment.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable

import structlog

from commands.lock.lock_dirs import pid_alive
from commands.snapshot.snapshots import this_host
from commands.snapshot.tidy import delete_judged
from commands.snapshot.store import BUNDLE_MANIFEST_SUFFIX, BUNDLE_NAME, BUNDLE_SUFFIX

log = structlog.get_logger("dbops.preserve")

FOREIGN_AGE_SECONDS = 24 * 3600
UNPUBLISHED_AGE_SECONDS = 600
_ENV = r"[a-z][a-z0-9_-]{0,39}"
_BUNDLE = re.sub(r"\(\?P<\w+>", "(?:", BUNDLE_NAME.pattern)  # a bundle's name, without its groups
# HOST may hold "-" and digits; what follows PID is matched whole, so HOST and PID split one way only.
_TEMP = re.compile(r"\.preserving-(?P<host>[A-Za-z0-9.-]{1,64}?)-(?P<pid>\d{1,10})-"
                   rf"(?:(?P<env>{_ENV})_b[0-9a-f]{{8}}\.zst|(?P<name>{_BUNDLE})\.preserved\.json)")
# What dbops wrote before the names carried host and environment: mkstemp's 8 characters, or PID-NAME.
_OLDER = re.compile(rf"\.preserving-(?:[a-z0-9_]{{8}}\.zst|\d{{1,10}}-(?P<name>{_BUNDLE})\.preserved\.json)")


def export_directory(snapshot_dir: Path | None) -> Path:
    """Where an environment's bundles are written before they are published."""
    return snapshot_dir if snapshot_dir is not None else Path(tempfile.gettempdir())


def remove_bundle_leftovers(directory: Path, env_name: str, *, dry_run: bool = False) -> list[str]:
    """Delete what killed exports of ``env_name`` left in ``directory`` (regular files only,
    never through a link); the names deleted (``dry_run``: that would be). What cannot be
    deleted is logged and left."""
    removed = delete_judged(directory, lambda entry, names, now: _abandoned(entry, names, env_name, now),
                            kept_event="preserve.leftover_kept", dry_run=dry_run)
    if removed and not dry_run:
        log.info("preserve.leftovers_removed", directory=str(directory), removed=removed)
    return removed


def _abandoned(entry: os.DirEntry, names: set[str], env_name: str, now: float) -> bool:
    def untouched_for(seconds: int) -> bool:
        return now - entry.stat(follow_symlinks=False).st_mtime > seconds

    if (temp := _TEMP.fullmatch(entry.name)) is not None:
        return _writer_gone(temp, env_name, untouched_for)
    if (older := _OLDER.fullmatch(entry.name)) is not None:
        if older["name"] is not None and BUNDLE_NAME.fullmatch(older["name"])["env"] != env_name:
            return False
        return untouched_for(FOREIGN_AGE_SECONDS)
    if entry.name.endswith(BUNDLE_SUFFIX):
        name = entry.name[: -len(BUNDLE_SUFFIX)]
        published = BUNDLE_NAME.fullmatch(name)
        return (published is not None and published["env"] == env_name
                and name + BUNDLE_MANIFEST_SUFFIX not in names and untouched_for(UNPUBLISHED_AGE_SECONDS))
    return False


def _writer_gone(temp: re.Match, env_name: str, untouched_for: Callable[[int], bool]) -> bool:
    owner = temp["env"] or BUNDLE_NAME.fullmatch(temp["name"])["env"]
    if owner != env_name:
        return False
    if temp["host"] == this_host():
        return not pid_alive(int(temp["pid"]))
    return untouched_for(FOREIGN_AGE_SECONDS)


def abandoned_publish(marker: str, env_name: str, written_at: float) -> str | None:
    """The bundle whose publish to object storage left ``marker`` (a ``manifest_temp_name``
    put before its upload) and was killed: its name, when the marker is ``env_name``'s and its
    writer is gone; else None."""
    temp = _TEMP.fullmatch(marker)
    if temp is None or temp["name"] is None:
        return None
    gone = _writer_gone(temp, env_name, lambda seconds: time.time() - written_at > seconds)
    return temp["name"] if gone else None
