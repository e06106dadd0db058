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
