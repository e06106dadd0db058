"""Quantities shown to people, formatted the same on every surface."""

from __future__ import annotations


def human_size(size: int | None) -> str:
    """Bytes as ``512 B``, ``1.5 KB`` … ``2.0 TB`` (binary units)."""
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def used_percent(used: int, free: int) -> int:
    """How full a file system is, as ``df`` shows it: used / (used + available), rounded up.

    ``free`` is what an unprivileged user may still write (``shutil.disk_usage().free``, i.e.
    f_bavail). The total includes blocks reserved for root (5% on ext4 by default), which nobody
    writing snapshots can have, so used / total would read a disk df calls 100% full as 95%.
    """
    room = used + free
    if room <= 0:
        return 0
    return -(-100 * used // room)  # df rounds up: a disk with one byte left is not "100%" until full
