"""The snapshot directory cannot trick dbops: it removes only what its own interrupted runs
left, never judges another host's file by a local pid, never follows a link, diagnoses every
file error and leaves nothing behind, and writes files only its own user can read."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commands.errors import SnapshotFailed
from commands.pg.dump import PgDumpSnapshotter
from commands.results import Outcome
from commands.snapshot.snapshots import find, list_snapshots, this_host

FILES = {"1_a.up.sql": "CREATE TABLE a (x int);", "1_a.down.sql": "DROP TABLE a;"}
DAY = 24 * 3600


def aged(path: Path, seconds: float, content: bytes = b"x" * 100) -> Path:
    """``path`` written now with its modification time ``seconds`` in the past."""
    path.write_bytes(content)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_a_create_removes_only_what_dbops_itself_left(make_bed, tmp_path):
    bed = make_bed(FILES)
    directory = tmp_path / "snapshots"
    directory.mkdir()
    host = this_host()
    kept = {
        aged(directory / "before-pg-upgrade.dump.zst", DAY).name,                              # made by hand
        aged(directory / "production_20260101_000000_vnone_interrupted.dump.zst", DAY).name,   # another environment's
        aged(directory / f".tmp-{host}-{os.getpid()}-test_20260101_000000_vnone_in-flight.dump.zst", DAY).name,
        aged(directory / ".tmp-otherhost-1-test_20260101_000000_vnone_in-flight.dump.zst", 3600).name,  # NFS
        aged(directory / ".tmp-otherhost-1-production_20260101_000000_vnone_old.dump.zst", 2 * DAY).name,
    }
    removed = {
        aged(directory / "test_20260101_000000_vnone_interrupted.dump.zst", DAY).name,
        aged(directory / f".tmp-{host}-{dead_pid()}-test_20260101_000000_vnone_killed.dump.zst", 0).name,
        aged(directory / ".tmp-otherhost-1-test_20260101_000000_vnone_abandoned.manifest.json", 2 * DAY).name,
        aged(directory / ".tmp-1234-test_20260101_000000_vnone_older-dbops.dump.zst", 2 * DAY).name,
    }

    created = bed.run("snapshot create").snapshot.name

    left = names(directory)
    assert kept <= left and not removed & left
    assert left - kept == {f"{created}.dump.zst", f"{created}.manifest.json"}


def test_a_directory_named_like_a_temporary_file_does_not_break_create(make_bed, tmp_path):
    bed = make_bed(FILES)
    directory = tmp_path / "snapshots"
    junk = [directory / ".tmp-junk",
            directory / f".tmp-{this_host()}-{dead_pid()}-test_20260101_000000_vnone_x.dump.zst"]
    for path in junk:
        path.mkdir(parents=True)

    result = bed.run("migrate up")

    assert result.outcome is Outcome.DONE and result.snapshot is not None and bed.state() == (1, False)
    assert all(path.is_dir() for path in junk)  # not ours to remove


def test_pin_never_follows_a_link_out_of_the_snapshot_directory(make_bed, tmp_path):
    bed = make_bed(FILES)
    name = bed.run("snapshot create").snapshot.name
    outside = tmp_path / "outside"
    outside.mkdir()
    (bed.settings.environment("test").snapshot_dir / f"{name}.pinned").symlink_to(outside / "planted")

    with pytest.raises(SnapshotFailed, match=r"\.pinned is not a regular file .* does not follow links"):
        bed.run(f"snapshot pin {name}")

    assert list(outside.iterdir()) == []
    assert not bed.run("snapshot list").snapshots[0].pinned


def test_a_data_file_swapped_for_a_link_after_listing_is_never_read_through_it(make_bed, tmp_path):
    bed = make_bed(FILES)
    name = bed.run("snapshot create").snapshot.name
    env = bed.settings.environment("test")
    snapshot = find(list_snapshots(env.snapshot_dir), name)
    elsewhere = tmp_path / "elsewhere.dump.zst"
    snapshot.path.rename(elsewhere)
    snapshot.path.symlink_to(elsewhere)  # the same bytes, so a checksum read through the link would pass

    verified = PgDumpSnapshotter().verify(env, snapshot)

    assert not verified.ok
    assert verified.checks == (("readable", False, f"{name}.dump.zst cannot be read: it is a link, which dbops never "
                                                   "follows"),)
    assert bed.run("snapshot list").snapshots == ()  # and a link is never listed


def test_a_full_disk_while_writing_the_manifest_leaves_nothing_and_says_disk_full(make_bed, small_filesystem):
    bed = make_bed(FILES, snapshot_dir=str(small_filesystem))
    first = bed.run("snapshot create").snapshot
    for path in small_filesystem.iterdir():
        path.unlink()
    page = os.statvfs(small_filesystem).f_frsize
    assert first.size % page < page - 64, "the dump ends too near a page boundary to fill the disk exactly"
    fs = os.statvfs(small_filesystem)
    # Room for exactly the dump's pages: the data file is written, its manifest is not.
    (small_filesystem / "filler").write_bytes(b"\0" * (fs.f_bavail * fs.f_frsize - math.ceil(first.size / page) * page))

    with pytest.raises(SnapshotFailed) as caught:
        bed.run("snapshot create")

    assert str(caught.value).startswith(f"Not enough disk space: {small_filesystem} has ")
    assert "Nothing was kept" in str(caught.value)
    assert names(small_filesystem) == {"filler"}
    assert bed.run("snapshot list").incomplete == ()


def test_snapshot_files_are_private_whatever_the_umask(make_bed, tmp_path):
    previous = os.umask(0o022)
    try:
        bed = make_bed(FILES)
        name = bed.run("snapshot create").snapshot.name
        bed.run(f"snapshot pin {name}")
        own = tmp_path / "operators-own"
        own.mkdir(mode=0o750)
        made_by_hand = make_bed(FILES, snapshot_dir=str(own))
        made_by_hand.run("snapshot create")
    finally:
        os.umask(previous)
    directory = tmp_path / "snapshots"

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(directory) == 0o700
    assert {p.name: mode(p) for p in directory.iterdir()} == {
        f"{name}.dump.zst": 0o600, f"{name}.manifest.json": 0o600, f"{name}.pinned": 0o600}
    assert mode(own) == 0o750  # a directory the operator made keeps the mode they gave it
    assert {mode(p) for p in own.iterdir()} == {0o600}
