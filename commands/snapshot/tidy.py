"""Removing the files interrupted writers left in a snapshot directory: one loop for the
snapshots' temporary and orphaned data files (``commands.pg.dump``) and for killed exports'
bundle files (``commands.snapshot.bundle_leftovers``); each says which files are its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import structlog

log = structlog.get_logger("dbops.snapshots")

# (a file, every file name in the directory, now as time.time()): is it a leftover to remove?
Judge = Callable[[os.DirEntry, set[str], float], bool]


def delete_judged(directory: Path, leftover: Judge, *, kept_event: str, dry_run: bool = False) -> list[str]:
    """Delete the regular files of ``directory`` (never through a link) that ``leftover`` judges
    so; the names deleted (``dry_run``: that would be). A file that cannot be deleted is logged
    as ``kept_event`` and left: tidying never fails what it runs for. An unreadable directory
    has nothing to remove."""
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    names, now, removed = {e.name for e in entries}, time.time(), []
    for entry in entries:
        if not leftover(entry, names, now):
            continue
        if dry_run:
            removed.append(entry.name)
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning(kept_event, file=entry.name, error=err.strerror)
            continue
        removed.append(entry.name)
    return removed
