"""`/snapshot list` on a bucket shows a page of the newest, read from few keys (commands.snapshot.paging),
against moto's standalone server over HTTP: the page is exactly the newest, "More" pages through every
snapshot once, a snapshot written between two pages by another process shifts nothing, and snapshots of
the flat layout and legacy names are on the pages where their time puts them; a directory pages alike."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from commands.snapshot.paging import PAGE
from commands.snapshot.results import SnapshotListResult
from tests import s3_server
from tests.test_schedule import write_snapshot
from tests.test_snapshots_s3 import BUCKET, manifest_key, moto_endpoint, s3, s3_bed  # noqa: F401

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _name(env: str, at: datetime, reason: str = "nightly") -> str:
    return f"{env}_{at:%Y%m%d_%H%M%S}_v2_{reason}"


def _put_catalog(s3, names: list[str]) -> None:
    """Snapshots as another replica leaves them: the manifest key (what lists them) and the data."""
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"team/db/data/{name}.dump.zst", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key=manifest_key(name, 1), Body=b"{}")


def _hours_apart(env: str, count: int, hours: int = 3, start: datetime = NOW) -> list[str]:
    """``count`` snapshot names, newest first, every ``hours`` back from ``start``."""
    return [_name(env, start - timedelta(hours=hours * i, minutes=1)) for i in range(count)]


def _pages(bed, first: str = "snapshot list") -> list[SnapshotListResult]:
    pages = [bed.run(first)]
    while pages[-1].more is not None:
        assert len(pages) < 100, "More never ends"
        pages.append(bed.run(f"snapshot list --before {pages[-1].more}"))
    return pages


def _names(pages: list[SnapshotListResult]) -> list[str]:
    return [s.name for page in pages for s in page.snapshots]


def test_a_page_of_hundreds_of_snapshots_is_exactly_the_newest_thirty_and_shows_their_pins(s3_bed, s3):
    bed = s3_bed()
    ours = _hours_apart("test", 300)  # 37 days back: the page needs the cut-off widened past one day
    look_alike = _hours_apart("test_eu", 40, hours=1)  # sorts after test_2026… in every folder, and is newer
    _put_catalog(s3, ours + look_alike)
    s3.put_object(Bucket=BUCKET, Key=f"team/db/pins/{ours[4]}.pinned", Body=b"")
    page = bed.run("snapshot list")
    assert isinstance(page, SnapshotListResult)
    assert [s.name for s in page.snapshots] == ours[:PAGE]
    assert [s.name for s in page.snapshots if s.pinned] == [ours[4]]
    assert not page.complete and PAGE <= page.counted <= 300 and page.more == ours[PAGE - 1]
    everything = bed.run("snapshot list --all")
    assert everything.complete and everything.counted == 300 and [s.name for s in everything.snapshots] == ours


def test_more_pages_through_every_snapshot_once_in_order(s3_bed, s3):
    bed = s3_bed()
    ours = _hours_apart("test", 95, hours=30)  # four months: pages of 30, 30, 30, 5
    _put_catalog(s3, ours)
    pages = _pages(bed)
    assert [len(p.snapshots) for p in pages] == [30, 30, 30, 5]
    assert _names(pages) == ours
    assert pages[-1].complete and pages[-1].more is None


def test_a_snapshot_written_by_another_process_between_pages_is_on_no_page_twice_and_shifts_nothing(
        s3_bed, s3, moto_endpoint):
    bed = s3_bed()
    ours = _hours_apart("test", 70, hours=2)
    _put_catalog(s3, ours)
    first = bed.run("snapshot list")
    assert [s.name for s in first.snapshots] == ours[:30]
    # another replica creates one (newer than every name shown) and one whose host's clock is behind
    # (named inside the second page's range), and a cleanup removes one the second page would show
    newest, late = _name("test", NOW + timedelta(minutes=5), "another"), _name("test", NOW - timedelta(hours=75), "late")
    write = ("import sys; from commands.objstore.s3 import S3Store\n"
             "store = S3Store(sys.argv[1], endpoint_url=sys.argv[2])\n"
             "for name in sys.argv[3:]:\n"
             "    with store.writer(name) as data: data.write(b'dump')\n"
             "    store.write_manifest(name, {'size': 4})\n")
    subprocess.run([sys.executable, "-c", write, f"s3://{BUCKET}/team/db", moto_endpoint, newest, late], check=True)
    s3.delete_object(Bucket=BUCKET, Key=manifest_key(ours[31], 1))

    rest = _pages(bed, f"snapshot list --before {first.more}")
    shown = [s.name for s in first.snapshots] + _names(rest)
    expected = sorted(set(ours) - {ours[31]} | {late}, reverse=True)
    assert shown == expected and len(shown) == len(set(shown))
    assert rest[0].snapshots[0].name == ours[30]  # the second page starts where the first stopped
    assert [s.name for s in bed.run("snapshot list").snapshots][:2] == [newest, ours[0]]  # a fresh first page has it


def test_snapshots_of_the_flat_layout_and_legacy_names_are_on_the_pages_their_time_puts_them(s3_bed, s3):
    bed = s3_bed()  # `togather_test_…` answers to the environment test by its name
    ours = _hours_apart("test", 40, hours=5)
    _put_catalog(s3, ours)
    flat = _name("test", NOW - timedelta(hours=52), "written-flat")  # between the catalog's 11th and 12th
    s3.put_object(Bucket=BUCKET, Key=f"team/db/{flat}.dump.zst", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"team/db/{flat}.manifest.json", Body=b"{}")
    legacy = f"togather_test_{NOW - timedelta(days=400):%Y%m%d_%H%M%S}"  # older than everything
    s3.put_object(Bucket=BUCKET, Key=f"team/db/{legacy}.sql.gz", Body=b"x")
    pages = _pages(bed)
    names = _names(pages)
    assert names[:11] == ours[:11] and names[11] == flat and names[12:41] == ours[11:]
    assert names[-1] == legacy and len(names) == 42
    assert bed.run("snapshot list").snapshots[11].name == flat


def test_a_bucket_with_few_snapshots_is_listed_exactly_in_one_round_of_requests(s3_bed, s3):
    bed = s3_bed()
    older = bed.run('snapshot create --reason "one"').snapshot
    newer = bed.run('snapshot create --reason "two"').snapshot
    with s3_server.StoreProxy(bed.settings.environment("test").s3_endpoint_url) as proxy:
        page = s3_bed(s3_endpoint_url=proxy.url).run("snapshot list")
    assert [s.name for s in page.snapshots] == [newer.name, older.name]
    assert page.complete and page.counted == 2 and page.more is None
    assert page.disk.snapshots_bytes == older.size + newer.size  # complete: the total is every snapshot's
    # 16 manifest folders from the cut-off, their first keys, the pins, the flat layout: one round, nothing read
    assert len(proxy.requests) == 2 * 16 + 2
    assert all(method == "GET" and "list-type=2" in path for method, path in proxy.requests), proxy.requests


def test_a_snapshot_directory_pages_the_same_way_with_exact_counts(make_bed, tmp_path):
    bed = make_bed({"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;"})
    directory = bed.settings.environment("test").snapshot_dir
    names = []
    for i in range(45):
        names.append(write_snapshot(directory, NOW - timedelta(hours=7 * i), reason=f"n{i}"))
    first = bed.run("snapshot list")
    assert [s.name for s in first.snapshots] == names[:30]
    assert first.complete and first.counted == 45 and first.more == names[29]
    assert first.disk.snapshots_bytes == 45 * 1000  # the whole directory's, as before
    pages = _pages(bed)
    assert [len(p.snapshots) for p in pages] == [30, 15] and _names(pages) == names
    assert pages[1].counted == 15 and pages[1].more is None
    assert bed.run(f"snapshot list --before {names[-1]}").snapshots == ()


def test_flat_snapshots_older_than_the_cut_off_never_take_the_place_of_newer_ones_not_yet_read(s3_bed, s3):
    bed = s3_bed()
    today = [_name("test", NOW - timedelta(minutes=30 * i + 1)) for i in range(25)]
    three_days = [_name("test", NOW - timedelta(days=3, minutes=i)) for i in range(10)]
    _put_catalog(s3, today + three_days)
    for i in range(10):  # flat ones five days back: with today's 25 they would make 35 read in the first round
        flat = _name("test", NOW - timedelta(days=5, minutes=i), "flat")
        s3.put_object(Bucket=BUCKET, Key=f"team/db/{flat}.dump.zst", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key=f"team/db/{flat}.manifest.json", Body=b"{}")
    page = bed.run("snapshot list")
    assert [s.name for s in page.snapshots] == today + three_days[:5]
