"""Benchmark: snapshots in S3-compatible object storage (issue 20), against moto's standalone
server over HTTP on this machine.

Not a test: run it by hand (see bench/README.md).

    .venv/bin/python bench/s3_snapshots.py [--count 10000] [--mb 300] [--json]

1. list: COUNT snapshots (data, manifest, a pin on every 50th: 2.02 objects each) put in a
   bucket, then ``/snapshot list`` as the executor runs it (paginated ListObjectsV2, names
   parsed, sorted, scoped), timed 5 times (target: under a second).
2. memory: a database of about MB megabytes of barely compressible rows, then
   ``dbops snapshot create`` (pg_dump | zstd | multipart upload) and ``dbops snapshot restore``
   (download | zstd -d | pg_restore | psql) as their own processes, each watched by
   bench/monitor.py: dbops' peak RSS (target: under 150 MB whatever the size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import psycopg  # noqa: E402

from bot.stores import use_snapshot_stores  # noqa: E402
from commands.config import parse_settings  # noqa: E402
from commands.context import Context  # noqa: E402
from commands.grammar import SnapshotList  # noqa: E402
from commands.identity import Actor  # noqa: E402
from commands.pg import embedded  # noqa: E402
from commands.snapshot import snapshot_ops  # noqa: E402
from commands.snapshot.snapshots import DATA_SUFFIX, MANIFEST_SUFFIX, PIN_SUFFIX, snapshot_name  # noqa: E402
from dbops_cli import dbops_program, peak_mb  # noqa: E402
from monitor import run_monitored  # noqa: E402
from tests import s3_server  # noqa: E402

BUCKET = "bench-snapshots"
LIST_TARGET_S = 1.0
MEMORY_TARGET_MB = 150.0


def _credentials() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID=s3_server.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3_server.SECRET_KEY,
                      AWS_DEFAULT_REGION="us-east-1")


def bench_list(endpoint: str, count: int) -> dict:
    client = s3_server.client(endpoint)
    client.create_bucket(Bucket=f"{BUCKET}-list")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = []
    for i in range(count):
        name = snapshot_name("production", start + timedelta(minutes=i), i % 300, False, f"before migration {i}")
        keys += [f"db/{name}{DATA_SUFFIX}", f"db/{name}{MANIFEST_SUFFIX}"] + ([f"db/{name}{PIN_SUFFIX}"] if i % 50 == 0 else [])
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=f"{BUCKET}-list", Key=key, Body=b"x"), keys))
    print(f"  {len(keys):,} objects put in {time.perf_counter() - started:.0f} s", flush=True)
    settings = parse_settings({"environments": {"production": {
        "database_url": "postgresql://127.0.0.1:1/unused", "migrations_dir": "m",
        "snapshot_url": f"s3://{BUCKET}-list/db", "s3_endpoint_url": endpoint,
        "require_approval": []}}}, source="bench",
        base_dir=Path("/tmp"), environ={})
    env = settings.environment("production")
    ctx = Context(settings=settings, databases=None, snapshots=None, actor=Actor(user="bench"))
    times = []
    for _ in range(5):
        started = time.perf_counter()
        result = snapshot_ops.list_(ctx, SnapshotList(env="production"), env)
        times.append(time.perf_counter() - started)
        assert len(result.snapshots) == count, len(result.snapshots)
    # The same pages fetched bare (botocore's paginator, nothing parsed): the store's share of the time.
    raw = []
    for _ in range(3):
        started = time.perf_counter()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=f"{BUCKET}-list", Prefix="db/", Delimiter="/")
        n = sum(len(page.get("Contents", ())) for page in pages)
        raw.append(time.perf_counter() - started)
        assert n == len(keys), n
    pages_n = -(-len(keys) // 1000)
    return {"count": count, "objects": len(keys), "pages": pages_n, "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "bare_pages_median_s": round(statistics.median(raw), 3),
            "per_page_ms": round(statistics.median(raw) / pages_n * 1000, 1), "target_s": LIST_TARGET_S}


def big_database(base_url: str, mb: int) -> str:
    url = embedded.recreate_database(base_url, "bench_s3")
    rows = mb * 1024 * 1024 // 140  # a row of about 140 bytes on disk, little of it compressible
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, t text)")
        for lo in range(0, rows, 500_000):
            conn.execute("INSERT INTO big SELECT g, md5(random()::text) || md5(random()::text) || md5(g::text) "
                         "FROM generate_series(%s, %s) g", (lo + 1, min(lo + 500_000, rows)))
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"  database: {size / 1e6:.0f} MB", flush=True)
    return url


def bench_memory(endpoint: str, base_url: str, mb: int, work: Path) -> dict:
    client = s3_server.client(endpoint)
    client.create_bucket(Bucket=f"{BUCKET}-big")
    url = big_database(base_url, mb)
    (work / "m").mkdir(exist_ok=True)
    config = work / "dbops.toml"
    config.write_text(f"[environments.bench]\ndatabase_url = {json.dumps(url)}\nmigrations_dir = \"m\"\n"
                      f"snapshot_url = \"s3://{BUCKET}-big/db\"\ns3_endpoint_url = {json.dumps(endpoint)}\n"
                      "require_approval = []\npre_migration_snapshot = false\n", encoding="utf-8")
    out = {"database_mb": mb}
    create = run_monitored([("dbops", [dbops_program(), "snapshot", "create", "--reason", "bench", "--config",
                                       str(config), "--format", "json"])])
    created = json.loads(create["stdout"])
    name = created["snapshot"]["name"]
    out |= {"upload_s": round(create["seconds"], 1), "upload_peak_mb": peak_mb(create, "dbops"),
            "dump_mb": round(created["snapshot"]["size"] / 1e6, 1)}
    restore = run_monitored([("dbops", [dbops_program(), "snapshot", "restore", name, "--config", str(config),
                                        "--format", "json"])])
    assert restore["codes"] == [0], restore["stderr"][-2000:]
    out |= {"download_s": round(restore["seconds"], 1), "download_peak_mb": peak_mb(restore, "dbops"),
            "target_mb": MEMORY_TARGET_MB}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _credentials()
    use_snapshot_stores()
    results = {}
    with tempfile.TemporaryDirectory(prefix="dbops-s3-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        moto = s3_server.start_moto()
        endpoint = next(moto)
        try:
            if args.count:
                print("list ...", flush=True)
                results["list"] = bench_list(endpoint, args.count)
                print(json.dumps(results["list"]), flush=True)
            base_url = embedded.start(work / "data")
            print("memory ...", flush=True)
            results["memory"] = bench_memory(endpoint, base_url, args.mb, work)
            print(json.dumps(results["memory"]), flush=True)
        finally:
            moto.close()  # the embedded server stops when this process exits (cleanup_mode="stop")
    print(json.dumps(results, indent=2) if args.json else results)
    ok = (results.get("list", {}).get("median_s", 0) < LIST_TARGET_S and results["memory"]["upload_peak_mb"] < MEMORY_TARGET_MB
          and results["memory"]["download_peak_mb"] < MEMORY_TARGET_MB)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
