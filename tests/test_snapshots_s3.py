"""Snapshots in S3-compatible object storage, against moto's standalone server over HTTP:
the whole life cycle, the faults (a killed upload, throttling, an unreachable store), and
two processes sharing one bucket."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.stores import use_snapshot_stores
from commands.errors import ConfigError, SnapshotFailed
from commands.config import parse_settings
from commands.executor import Executor
from commands.pg.control import PgAuditLog, prepare_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.job_runs import PgJobRuns
from commands.results import Outcome, Reason, Refusal
from commands.snapshot.results import CleanupResult, RestoreResult, SnapshotCreated, SnapshotListResult
from commands.snapshot.store import store_for
from commands.watch.schedule import CleanupJob
from tests import s3_server
from tests.conftest import wait_for

BUCKET = "dbops-snapshots"


@pytest.fixture(scope="module")
def moto_endpoint():
    yield from s3_server.start_moto()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """A fresh bucket; credentials and region the standard AWS way (environment variables)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    use_snapshot_stores()
    client = s3_server.client(moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ()):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


def manifest_key(name: str, size: int) -> str:
    """Where a snapshot's manifest is: its own folder, its key saying the dump's size."""
    return f"team/db/manifests/{hashlib.sha256(name.encode()).hexdigest()[0]}/{name}.{size}.manifest.json"


def uploads(client) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ())]


@pytest.fixture
def s3_bed(make_bed, s3, moto_endpoint):
    def make(files=None, **env):
        env.setdefault("snapshot_url", f"s3://{BUCKET}/team/db")
        env.setdefault("s3_endpoint_url", moto_endpoint)
        return make_bed(files or {"1_a.up.sql": "CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2);",
                                  "1_a.down.sql": "DROP TABLE a;",
                                  "2_b.up.sql": "CREATE TABLE b (y int);", "2_b.down.sql": "DROP TABLE b;"}, **env)
    return make


def test_the_whole_snapshot_life_cycle_works_in_object_storage(s3_bed, s3, tmp_path):
    bed = s3_bed()
    created = bed.run('snapshot create --reason "before the fix"')
    assert isinstance(created, SnapshotCreated)
    name = created.snapshot.name
    # The dump went up as a multipart upload (its ETag says so), then the manifest; nothing on local disk.
    assert keys(s3) == [f"team/db/data/{name}.dump.zst", manifest_key(name, created.snapshot.size)]
    assert "-" in s3.head_object(Bucket=BUCKET, Key=f"team/db/data/{name}.dump.zst")["ETag"]
    assert not (tmp_path / "snapshots").exists()
    assert uploads(s3) == []

    listed = bed.run("snapshot list")
    assert isinstance(listed, SnapshotListResult) and [s.name for s in listed.snapshots] == [name]
    assert listed.disk.store == f"s3://{BUCKET}/team/db"
    assert bed.run(f"snapshot verify {name}").outcome is Outcome.DONE

    # up takes its pre-migration snapshot in the bucket too
    bed.run("migrate up 2")
    assert bed.state() == (2, False)
    after_up = [s.name for s in bed.run("snapshot list").snapshots]
    assert len(after_up) == 2 and after_up[1] == name

    # restore streams from the store (and takes its safety snapshot there first)
    restored = bed.run(f"snapshot restore {name}")
    assert isinstance(restored, RestoreResult) and restored.safety_snapshot is not None
    assert bed.state() is None and bed.tables() == set()
    assert len(bed.run("snapshot list").snapshots) == 3

    # pin protects from cleanup; cleanup keeps the newest keep_last and deletes the rest
    assert bed.run(f"snapshot pin {name}").outcome is Outcome.DONE
    assert f"team/db/pins/{name}.pinned" in keys(s3)
    cleaned = bed.run("snapshot cleanup --retention-days 0")
    assert isinstance(cleaned, CleanupResult) and cleaned.deleted == ()  # keep_last 3: all three kept
    bed2 = s3_bed(keep_last=1)
    cleaned = bed2.run("snapshot cleanup --retention-days 0")
    newest = bed2.run("snapshot list").snapshots[0].name
    assert {s.name for s in cleaned.deleted} == set(after_up[:1]) - {newest} | ({restored.safety_snapshot} - {newest})
    assert sorted(s.name for s in bed2.run("snapshot list").snapshots) == sorted({name, newest})
    assert bed2.run(f"snapshot unpin {name}").outcome is Outcome.DONE
    assert f"team/db/pins/{name}.pinned" not in keys(s3)


def test_a_damaged_object_fails_verify_and_is_never_restored(s3_bed, s3):
    bed = s3_bed()
    bed.run("migrate up 1")
    name = bed.run('snapshot create --reason "x"').snapshot.name
    s3.put_object(Bucket=BUCKET, Key=f"team/db/data/{name}.dump.zst", Body=b"not a dump at all")
    verified = bed.run(f"snapshot verify {name}")
    assert verified.outcome is Outcome.FAILED
    assert any(not c.passed and "does not match the manifest" in c.detail for c in verified.checks)
    refused = bed.run(f"snapshot restore {name}")
    assert isinstance(refused, Refusal) and refused.reason is Reason.SNAPSHOT_DAMAGED
    assert bed.state() == (1, False)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_new_database_restore_from_object_storage_streams_it_or_unpacks_it_privately_for_parallel_jobs(
        s3_bed, s3, tmp_path, monkeypatch, jobs):
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # TMPDIR as dbops reads it
    bed = s3_bed(restore_mode="new-database", restore_jobs=jobs)
    bed.run("migrate up 1")
    name = bed.run('snapshot create --reason "before"').snapshot.name
    bed.run("migrate up")
    bed.execute("INSERT INTO a VALUES (3)")

    restored = bed.run(f"snapshot restore {name}")

    assert isinstance(restored, RestoreResult) and (restored.mode, restored.jobs) == ("new-database", jobs)
    assert bed.state() == (1, False) and bed.query("SELECT x FROM a ORDER BY x") == [(1,), (2,)]
    assert "b" not in bed.tables() and list(private.iterdir()) == []


def test_a_drill_restores_a_snapshot_from_object_storage_and_checks_it(s3_bed, s3):
    from commands.snapshot.results import DrillResult
    bed = s3_bed()
    bed.run("migrate up 1")
    name = bed.run('snapshot create --reason "drill me"').snapshot.name
    drilled = bed.run(f"snapshot drill {name}")
    assert isinstance(drilled, DrillResult) and drilled.name == name, drilled
    assert drilled.outcome is Outcome.DONE, drilled.checks
    assert {c.name for c in drilled.checks if c.passed} >= {"restore", "version"}
    assert bed.state() == (1, False)  # the managed database was only read


def test_environments_sharing_a_bucket_prefix_see_and_touch_only_their_own(s3_bed, s3, moto_endpoint, tmp_path):
    bed = s3_bed()
    theirs = bed.run('snapshot create --reason "theirs"').snapshot.name
    other = {"database_url": bed.url, "migrations_dir": str(bed.migrations), "snapshot_url": f"s3://{BUCKET}/team/db",
             "s3_endpoint_url": moto_endpoint, "require_approval": []}
    settings = parse_settings({"environments": {"test": other, "staging": dict(other)}}, source="t",
                              base_dir=tmp_path, environ={})
    executor = Executor(settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter())
    from commands import grammar
    from commands.executor import Actor
    listed = executor.run(grammar.parse("snapshot list staging"), Actor(user="alice"))
    assert listed.snapshots == ()
    refused = executor.run(grammar.parse(f"snapshot restore {theirs} staging"), Actor(user="alice"))
    assert isinstance(refused, Refusal) and refused.reason is Reason.OTHER_ENVIRONMENT


def test_a_snapshot_url_and_a_snapshot_dir_together_are_refused_and_credentials_never_go_in_the_config(tmp_path):
    base = {"database_url": "postgresql://h/db", "migrations_dir": "m"}

    def error(**env) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_settings({"environments": {"p": {**base, **env}}}, source="t", base_dir=tmp_path, environ={})
        return str(caught.value)

    assert "both snapshot_dir and snapshot_url" in error(snapshot_dir="s", snapshot_url="s3://bucket/p")
    assert "s3://BUCKET/PREFIX" in error(snapshot_url="https://bucket/p")
    assert "s3://BUCKET/PREFIX" in error(snapshot_url="s3://bucket/../etc")
    assert "without credentials" in error(snapshot_url="s3://bucket/p", s3_endpoint_url="http://key:secret@minio:9000")
    assert "without snapshot_url" in error(snapshot_dir="s", s3_endpoint_url="http://minio:9000")


CONFIG = """[environments.test]
database_url = "{url}"
migrations_dir = "{migrations}"
snapshot_url = "s3://{bucket}/team/db"
s3_endpoint_url = "{endpoint}"
require_approval = []
lock_wait_seconds = 2
"""


def test_a_killed_upload_leaves_nothing_listed_and_the_next_create_aborts_it(s3_bed, s3, moto_endpoint, tmp_path):
    bed = s3_bed()
    # about 40 MB of barely compressible rows: the dump takes several parts
    bed.execute("CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) || md5(random()::text) AS t "
                "FROM generate_series(1, 400000) g")
    config = tmp_path / "dbops.toml"
    config.write_text(CONFIG.format(url=bed.url, migrations=bed.migrations, bucket=BUCKET, endpoint=moto_endpoint))
    child = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "snapshot", "create", "--reason", "killed",
                              "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        upload = wait_for(lambda: next(iter(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ())), None),
                          timeout=60, what="the upload to start")
        wait_for(lambda: s3.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts"),
                 timeout=60, what="a part to be uploaded")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    listed = bed.run("snapshot list")
    assert listed.snapshots == ()
    assert [f.split("-")[0] for f in listed.incomplete] == [".tmp"]  # the killed create's marker, shown as interrupted
    assert uploads(s3) == [upload["Key"]]

    created = bed.run('snapshot create --reason "after the kill"')
    assert isinstance(created, SnapshotCreated)
    assert uploads(s3) == []  # the abandoned upload was aborted
    assert keys(s3) == [f"team/db/data/{created.snapshot.name}.dump.zst",
                        manifest_key(created.snapshot.name, created.snapshot.size)]
    assert bed.run(f"snapshot verify {created.snapshot.name}").outcome is Outcome.DONE


def test_throttling_and_server_errors_are_retried_until_the_store_answers(s3_bed, s3, moto_endpoint):
    with s3_server.ThrottlingProxy(moto_endpoint, refuse=3) as proxy:
        bed = s3_bed(s3_endpoint_url=proxy.url)
        created = bed.run('snapshot create --reason "through a throttling store"')
        assert isinstance(created, SnapshotCreated)
        assert proxy.refused == 3 and proxy.forwarded > 3
        assert bed.run("snapshot list").snapshots[0].name == created.snapshot.name


def test_an_unreachable_store_refuses_the_snapshot_and_so_the_migration(s3_bed, s3):
    bed = s3_bed(s3_endpoint_url=f"http://127.0.0.1:{s3_server.free_port()}")
    with pytest.raises(SnapshotFailed) as caught:
        bed.run('snapshot create --reason "x"')
    message = caught.value.message
    assert f"Object storage s3://{BUCKET}/team/db cannot be reached" in message and "Nothing was kept" in message
    with pytest.raises(SnapshotFailed) as caught:
        bed.run("migrate up 1")
    assert "The snapshot before" in caught.value.message and "so nothing was changed" in caught.value.message
    assert bed.state() is None and bed.tables() == set()
    assert s3_server.SECRET_KEY not in message and s3_server.ACCESS_KEY not in message


def test_two_processes_sharing_a_bucket_run_one_cleanup_per_occurrence(s3_bed, s3, control_url):
    prepare_control_database(control_url)
    bed = s3_bed(control=control_url, keep_last=1, retention_days=7)
    env = bed.settings.environment("test")
    for reason in ("one", "two", "three"):
        bed.run(f'snapshot create --reason "{reason}"')
    when = datetime.now(timezone.utc) + timedelta(days=30)
    occurrence = when.replace(hour=3, minute=0, second=0, microsecond=0)
    executors = [Executor(bed.settings, PgDatabases(application_name=f"dbops-{i}"), PgDumpSnapshotter(),
                          audit=PgAuditLog(control_url), clock=lambda: occurrence + timedelta(seconds=5))
                 for i in range(2)]
    jobs = [CleanupJob(executor, PgJobRuns(control_url), owner=f"replica-{i}") for i, executor in enumerate(executors)]
    barrier, events, lock = threading.Barrier(2), [], threading.Lock()

    def tick(job):
        barrier.wait()
        said = job.tick(env, occurrence=occurrence, now=occurrence + timedelta(seconds=5))
        with lock:
            events.extend(said)
    threads = [threading.Thread(target=tick, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    reports = [e for e in events if e.kind == "report"]
    assert len(reports) == 1 and len(reports[0].result.deleted) == 2
    assert len(store_for(env).list().snapshots) == 1


def test_a_preserving_restore_keeps_its_bundle_in_the_bucket_beside_the_snapshots(s3_bed, s3):
    from tests.test_preserve import FILES, writes_after_the_snapshot
    bed = s3_bed(FILES, preserve={"orders": ["placed"]})
    name = writes_after_the_snapshot(bed, at=1)  # the restore takes version 2's column away
    restored = bed.run(f"snapshot restore {name} --preserve")
    assert isinstance(restored, RestoreResult) and restored.outcome is Outcome.DONE
    bundle = restored.preserved.bundle
    assert f"team/db/{bundle}.preserved.zst" in keys(s3) and f"team/db/{bundle}.preserved.json" in keys(s3)
    assert {t.table: t.unfit for t in restored.preserved.tables} == {"public.users": 5, "public.orders": 4}
    listing = bed.run("snapshot list")
    assert listing.orphans == () and listing.incomplete == ()  # a bundle is no snapshot, whole or partial
    assert [b.name for b in bed.run("snapshot preserved").bundles] == [bundle]

    bed.run("migrate up")
    again = bed.run(f"snapshot reimport {bundle}")
    assert {t.table: (t.imported, t.conflicts) for t in again.report.tables} == {
        "public.users": (3, 2), "public.orders": (4, 0)}

    assert bed.run(f"snapshot pin {bundle}").outcome is Outcome.DONE
    env = bed.settings.environment("test")
    bed.settings.environments["test"] = dataclasses.replace(env, keep_last=0)
    assert bed.run("snapshot cleanup --retention-days 0").bundles_deleted == ()  # pinned
    assert bed.run(f"snapshot unpin {bundle}").outcome is Outcome.DONE
    assert bed.run("snapshot cleanup --retention-days 0").bundles_deleted == (bundle,)
    assert not [k for k in keys(s3) if ".preserved." in k]
