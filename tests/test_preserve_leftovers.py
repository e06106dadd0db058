"""What a ``--preserve`` export killed part-way leaves in the snapshot directory, or in the bucket
(an unfinished upload): found by cleanup once its writer is gone, reported (a dry run says what
it would remove) and removed; a writer still alive, and everything listed, are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from bot.cli.shell import result_text
from commands.preserve.bundles import BundleWriter
from commands.results import Outcome
from commands.snapshot.snapshots import this_host
from tests.test_preserve import FILES, writes_after_the_snapshot
from tests.test_snapshots_s3 import BUCKET, keys, moto_endpoint, s3, s3_bed, uploads  # noqa: F401 (fixtures)

KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from commands.preserve.bundles import BundleWriter
writer = BundleWriter(Path(sys.argv[1]), "test")
writer.table({"table": "public.users", "columns": ["id"]})
writer.rows(b"1\\n2\\n")
writer.writer.flush()
print(writer.path.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_cleanup_removes_and_reports_what_a_killed_export_left_and_keeps_a_live_writers_file(make_bed):
    bed = make_bed(FILES, preserve={"orders": ["placed"]})
    name = writes_after_the_snapshot(bed)
    kept_bundle = bed.run(f"snapshot restore {name} --preserve").preserved.bundle
    directory = bed.settings.environment("test").snapshot_dir
    # An export SIGKILLed while it wrote: its file stays, its process is gone.
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(directory)], capture_output=True, text=True,
                            env={**os.environ}, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    dead = killed.stdout.strip()
    # A publish killed between linking the data and writing its manifest, long ago; and one just now.
    unpublished = "test_20260101_000000_preserved.preserved.zst"
    (directory / unpublished).write_bytes(b"rows")
    os.utime(directory / unpublished, (time.time() - 3600, time.time() - 3600))
    publishing = "test_20260101_000001_preserved.preserved.zst"
    (directory / publishing).write_bytes(b"rows")
    other_env = "staging_20260101_000000_preserved.preserved.zst"
    (directory / other_env).write_bytes(b"rows")
    os.utime(directory / other_env, (time.time() - 3600, time.time() - 3600))
    live = BundleWriter(directory, "test")  # an export running now, in this process
    try:
        before = sorted(os.listdir(directory))

        dry = bed.run("snapshot cleanup --dry-run")

        assert sorted(dry.export_leftovers) == sorted([dead, unpublished]) and sorted(os.listdir(directory)) == before
        assert (f"Also would remove 2 files that exports of rows (--preserve) killed part-way had left, their writer "
                "gone: ") in result_text(dry, command="snapshot cleanup --dry-run")

        done = bed.run("snapshot cleanup")

        assert done.outcome is Outcome.DONE and sorted(done.export_leftovers) == sorted([dead, unpublished])
        card = result_text(done, command="snapshot cleanup")
        assert "Also removed 2 files that exports of rows (--preserve) killed part-way had left" in card
        assert f"`{dead}`" in card
        left = set(os.listdir(directory))
        assert dead not in left and unpublished not in left
        assert {live.path.name, publishing, other_env} <= left
        assert [b.name for b in bed.run("snapshot preserved").bundles] == [kept_bundle]
    finally:
        live.discard()


def test_cleanup_aborts_the_upload_a_killed_publish_left_in_the_bucket_and_keeps_a_live_ones(s3_bed, s3, tmp_path,
                                                                                            monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its exports are written: dbops' own here
    bed = s3_bed(FILES)
    dead_pid = subprocess.Popen(["true"])  # a pid whose process has ended: the killed publisher's
    dead_pid.wait()
    prefix = "team/db/"

    def publishing(pid: int, name: str) -> str:
        """What a publish leaves while its data goes up: its marker, and an unfinished multipart upload."""
        marker = f".preserving-{this_host()}-{pid}-{name}.preserved.json"
        s3.put_object(Bucket=BUCKET, Key=prefix + marker, Body=b"")
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}{name}.preserved.zst")["UploadId"]
        s3.upload_part(Bucket=BUCKET, Key=f"{prefix}{name}.preserved.zst", UploadId=upload, PartNumber=1,
                       Body=b"x" * (5 << 20))
        return marker

    killed = publishing(dead_pid.pid, "test_20260101_000000_preserved")
    live = publishing(os.getpid(), "test_20260101_000001_preserved")

    dry = bed.run("snapshot cleanup --dry-run")
    assert dry.export_leftovers == (killed,) and len(uploads(s3)) == 2

    done = bed.run("snapshot cleanup")

    assert done.outcome is Outcome.DONE and done.export_leftovers == (killed,)
    assert f"`{killed}`" in result_text(done, command="snapshot cleanup")
    assert uploads(s3) == [f"{prefix}test_20260101_000001_preserved.preserved.zst"]
    assert keys(s3, prefix + ".preserving-") == [prefix + live]
