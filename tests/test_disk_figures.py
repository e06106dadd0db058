"""Disk figures agree with df: on a real ext4 file system with blocks reserved for root, the
percentage dbops shows and compares with disk_alert_percent is df's Use% (used / (used +
available)), not used / total, which would read a disk no snapshot fits on as half empty."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.slack.blocks import locks as blocks_locks
from bot.cli.shell import result_text
from commands.pg.alerts import PgAlerts
from commands.pg.control import migrate_control_database
from commands.watch.watch_locks import DiskWatcher

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


@pytest.fixture
def reserved_filesystem(tmp_path: Path):
    """A real 8 MiB ext4 file system with half its blocks reserved for root (mkfs -m 50), mounted
    at tmp_path/snapshots and filled until df says it is over 85% full."""
    image, mountpoint = tmp_path / "disk.img", tmp_path / "snapshots"
    mountpoint.mkdir()
    with image.open("wb") as fh:
        fh.truncate(8 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "50", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        available = int(df(mountpoint)["avail"])
        (mountpoint / "filler.bin").write_bytes(b"\0" * int(available * 1024 * 0.9))
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def df(path: Path) -> dict[str, str]:
    out = subprocess.run(["df", "-k", "--output=size,used,avail,pcent", str(path)], check=True,
                         capture_output=True, text=True).stdout.splitlines()[-1].split()
    return dict(zip(("size", "used", "avail", "pcent"), out))


def test_snapshot_list_shows_the_percentage_df_shows_on_a_disk_with_reserved_blocks(make_bed, reserved_filesystem):
    bed = make_bed(FILES, snapshot_dir=str(reserved_filesystem))
    seen = df(reserved_filesystem)
    used_of_total = 100 * int(seen["used"]) // int(seen["size"])
    assert int(seen["pcent"].rstrip("%")) >= 85 > used_of_total + 20  # the two readings are far apart here

    shown = result_text(bed.run("snapshot list test"), command="snapshot list test")

    assert re.search(r"disk (\d+)% full", shown)[1] + "%" == seen["pcent"], shown


def test_the_disk_watcher_alerts_at_dfs_percentage_not_used_of_total(make_bed, control_url, reserved_filesystem):
    bed = make_bed(FILES, control=control_url, snapshot_dir=str(reserved_filesystem), disk_alert_percent=85)
    migrate_control_database(control_url)
    watcher = DiskWatcher(PgAlerts(control_url), settings=bed.settings, clock=lambda: datetime.now(timezone.utc))

    (event,) = watcher.tick(bed.settings.environment("test"))

    headline = blocks_locks.alert(event, now=datetime.now(timezone.utc)).text
    assert f"the snapshot disk is {df(reserved_filesystem)['pcent']} full (alert at 85%)" in headline
