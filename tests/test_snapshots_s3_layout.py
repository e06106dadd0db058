"""Object storage at scale, against moto's standalone server over HTTP: what a listing asks
the store (one request per manifest folder, all at once, no object opened), snapshots of
the older flat layout still working beside the catalog, and the dump's parts going up
several at once, in order, aborted as a whole when one fails."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from commands.errors import SnapshotFailed
from commands.objstore.parts import PART_THREADS
from commands.results import Outcome
from commands.snapshot.results import CleanupResult, RestoreResult, SnapshotCreated
from tests import s3_server
from tests.conftest import wait_for
from tests.test_snapshots_s3 import BUCKET, keys, manifest_key, moto_endpoint, s3, s3_bed, uploads  # noqa: F401

BIG_TABLE = ("CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) || md5(random()::text) AS t "
             "FROM generate_series(1, 400000) g")  # barely compressible: the dump takes several 5 MiB parts


def test_a_listing_asks_one_page_per_manifest_folder_at_once_and_opens_no_object(s3_bed, s3):
    bed = s3_bed()
    older = bed.run('snapshot create --reason "one"').snapshot
    newer = bed.run('snapshot create --reason "two"').snapshot
    bed.run(f"snapshot pin {older.name}")
    with s3_server.StoreProxy(bed.settings.environment("test").s3_endpoint_url) as proxy:
        listed = s3_bed(s3_endpoint_url=proxy.url).run("snapshot list --all")  # the whole inventory
    assert [(s.name, s.size, s.pinned) for s in listed.snapshots] == [(newer.name, newer.size, False),
                                                                      (older.name, older.size, True)]
    # 16 manifest folders, the pins, the flat layout: one ListObjectsV2 each, nothing read
    assert len(proxy.requests) == 18
    assert all(method == "GET" and "list-type=2" in path for method, path in proxy.requests), proxy.requests


def _to_flat_layout(s3, name: str, size: int) -> None:
    """Move a snapshot's objects where dbops wrote them before the catalog layout."""
    for old, new in ((f"team/db/data/{name}.dump.zst", f"team/db/{name}.dump.zst"),
                     (manifest_key(name, size), f"team/db/{name}.manifest.json")):
        s3.copy_object(Bucket=BUCKET, Key=new, CopySource={"Bucket": BUCKET, "Key": old})
        s3.delete_object(Bucket=BUCKET, Key=old)


def test_snapshots_of_the_flat_layout_are_listed_verified_pinned_restored_and_cleaned_up(s3_bed, s3):
    bed = s3_bed(keep_last=1)
    flat = bed.run('snapshot create --reason "written flat"').snapshot
    _to_flat_layout(s3, flat.name, flat.size)
    catalog = bed.run('snapshot create --reason "written to the catalog"').snapshot
    listed = bed.run("snapshot list")
    assert [(s.name, s.size) for s in listed.snapshots] == [(catalog.name, catalog.size), (flat.name, flat.size)]
    assert listed.orphans == () and listed.incomplete == ()

    assert bed.run(f"snapshot verify {flat.name}").outcome is Outcome.DONE
    assert bed.run(f"snapshot pin {flat.name}").outcome is Outcome.DONE
    assert f"team/db/{flat.name}.pinned" in keys(s3) and bed.run("snapshot list").snapshots[1].pinned
    assert bed.run(f"snapshot unpin {flat.name}").outcome is Outcome.DONE
    # A snapshot's time is its name's second (and the store's LastModified, whole seconds on
    # moto): two made in one second are equally the newest. The restore comes later, as it
    # would in use, so its safety snapshot is the one keep_last keeps.
    made = catalog.created_at
    wait_for(lambda: datetime.now(timezone.utc).replace(microsecond=0) > made, what="the next second")
    restored = bed.run(f"snapshot restore {flat.name}")
    assert isinstance(restored, RestoreResult) and restored.safety_snapshot is not None

    cleaned = bed.run("snapshot cleanup --retention-days 0")
    assert isinstance(cleaned, CleanupResult)
    assert {s.name for s in cleaned.deleted} == {flat.name, catalog.name}  # keep_last 1: the safety snapshot stays
    assert [s.name for s in bed.run("snapshot list").snapshots] == [restored.safety_snapshot]
    assert not [key for key in keys(s3) if flat.name in key or catalog.name in key]


def test_the_dump_parts_go_up_several_at_once_and_arrive_in_order(s3_bed, s3, moto_endpoint):
    with s3_server.PartsProxy(moto_endpoint, hold_first=True) as proxy:
        bed = s3_bed(s3_endpoint_url=proxy.url)
        bed.execute(BIG_TABLE)
        created = bed.run('snapshot create --reason "in parallel"')
    assert isinstance(created, SnapshotCreated)
    name = created.snapshot.name
    # part 2 was on its way while part 1 was still unanswered, and never more than the bound at once
    assert 2 <= proxy.most_at_once <= PART_THREADS
    parts = int(s3.head_object(Bucket=BUCKET, Key=f"team/db/data/{name}.dump.zst")["ETag"].strip('"').split("-")[1])
    assert parts >= 3
    assert s3_bed().run(f"snapshot verify {name}").outcome is Outcome.DONE  # the sha256 of the parts as assembled


def test_a_part_that_fails_mid_upload_aborts_the_upload_and_nothing_is_listed(s3_bed, s3, moto_endpoint):
    with s3_server.PartsProxy(moto_endpoint, fail_part=2) as proxy:
        bed = s3_bed(s3_endpoint_url=proxy.url)
        bed.execute(BIG_TABLE)
        with pytest.raises(SnapshotFailed) as caught:
            bed.run('snapshot create --reason "cut short"')
        listed = bed.run("snapshot list")
    assert "refused to upload part 2" in caught.value.message and "ExpiredToken" in caught.value.message
    assert listed.snapshots == () and listed.incomplete == ()
    assert uploads(s3) == [] and keys(s3) == []


def _checks(result) -> dict[str, tuple[str, str]]:
    return {check.name: (check.verdict.name, check.detail) for check in result.checks}


def test_doctor_proves_the_bucket_can_be_listed_written_deleted_and_its_uploads_aborted_and_leaves_nothing(
        s3_bed, s3, moto_endpoint):
    checks = _checks(s3_bed().run("dbops doctor"))
    assert checks["snapshot directory"] == ("PASS", f"s3://{BUCKET}/team/db can be listed (0 snapshots); a probe object "
                                                    "was written and deleted, and a multipart upload started and "
                                                    "aborted, under its prefix")
    assert checks["free space"][0] == "SKIP" and "no disk to fill" in checks["free space"][1]
    assert keys(s3) == [] and uploads(s3) == []

    with s3_server.DenyingProxy(moto_endpoint, {"DELETE"}) as proxy:
        verdict, detail = _checks(s3_bed(s3_endpoint_url=proxy.url).run("dbops doctor"))["snapshot directory"]
    assert verdict == "WARN" and "(delete: AccessDenied; abort an upload: AccessDenied)" in detail
    with s3_server.DenyingProxy(moto_endpoint, {"PUT", "POST"}) as proxy:
        verdict, detail = _checks(s3_bed(s3_endpoint_url=proxy.url).run("dbops doctor"))["snapshot directory"]
    assert verdict == "FAIL" and "may not write there (write: AccessDenied; start an upload: AccessDenied)" in detail


def test_timestamps_are_read_as_botocore_reads_them_whatever_their_format():
    from botocore.utils import parse_timestamp

    from commands.objstore.s3 import _timestamp
    for said in ("2026-12-01T15:42:52.000Z", "2026-12-01T15:42:52Z", "Tue, 01 Dec 2026 15:42:52 GMT"):
        assert _timestamp(said) == parse_timestamp(said)
