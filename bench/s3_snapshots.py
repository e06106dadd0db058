"""Benchmark: snapshots in S3-compatible object storage (issue 20), against local S3-compatible
servers over HTTP on this machine: moto's standalone server (Python) and s3rver (Node), side
by side in one run, or any endpoint already running.

Not a test: run it by hand (see bench/README.md).

    .venv/bin/python bench/s3_snapshots.py [--count 10000] [--layout both] [--mb 300] [--json]
                                           [--server moto|s3rver|both | --endpoint URL]

1. list: COUNT snapshots (data, manifest, a pin on every 50th: 2.02 objects each) put in a
   bucket, in the catalog layout dbops writes and in the flat one it wrote before (one
   bucket each), then ``/snapshot list`` as the executor runs it (ListObjectsV2 requests,
   names parsed, sorted, scoped), timed 5 times: the whole inventory (``--all``) and the page
   of the newest 30 that the card shows (target: under a second for the page), with the number
   of requests one listing makes (what a real store's latency multiplies) and the split of
   the median run: the store's share (requests under way: sent, answered, parsed by
   botocore) and dbops' (the rest).
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
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import boto3  # noqa: E402
import psycopg  # noqa: E402
from botocore.config import Config  # noqa: E402

from bot.stores import use_snapshot_stores  # noqa: E402
from commands.config import parse_settings  # noqa: E402
from commands.context import Context  # noqa: E402
from commands.grammar import SnapshotList  # noqa: E402
from commands.identity import Actor  # noqa: E402
from commands.pg import embedded  # noqa: E402
from commands.snapshot import snapshot_ops  # noqa: E402
from commands.snapshot.snapshots import DATA_SUFFIX, MANIFEST_SUFFIX, PIN_SUFFIX, snapshot_name  # noqa: E402
from commands.snapshot.store import store_for  # noqa: E402
from dbops_cli import dbops_program, peak_mb  # noqa: E402
from monitor import run_monitored  # noqa: E402
from tests import s3_server  # noqa: E402
from tests.conftest import wait_for  # noqa: E402

BUCKET = "bench-snapshots"
S3RVER = "s3rver@3.7.1"
S3RVER_HOME = Path(os.environ.get("S3RVER_HOME", "/tmp/dbops-bench-s3rver"))
# s3rver knows one key pair (S3RVER/S3RVER) unless told another: it is given the tests' pair,
# so both servers are spoken to with the same credentials.
S3RVER_LAUNCHER = """
const S3rver = require('s3rver');
require('s3rver/lib/models/account').DUMMY_ACCOUNT.createKeyPair(process.env.KEY, process.env.SECRET);
new S3rver({address: '127.0.0.1', port: Number(process.env.PORT), directory: process.env.DIR, silent: true})
  .run().then(() => console.log('listening'));
"""
LIST_TARGET_S = 1.0
PAGE = 30  # commands.snapshot.paging.PAGE (not importable from a checkout from before it)
NEWEST_PAGE = 20
MEMORY_TARGET_MB = 150.0


def _credentials() -> None:
    if "AWS_ACCESS_KEY_ID" not in os.environ:
        os.environ.update(AWS_ACCESS_KEY_ID=s3_server.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3_server.SECRET_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def start_s3rver(work: Path):
    """s3rver (Node) on a free port, its objects under ``work``; yields its endpoint URL."""
    if not (S3RVER_HOME / "node_modules" / "s3rver").is_dir():
        S3RVER_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(S3RVER_HOME), "--no-audit", "--no-fund", S3RVER],
                       check=True, stdout=subprocess.DEVNULL)
    port = s3_server.free_port()
    (work / "s3rver").mkdir(exist_ok=True)
    env = dict(os.environ, NODE_PATH=str(S3RVER_HOME / "node_modules"), PORT=str(port), DIR=str(work / "s3rver"),
               KEY=s3_server.ACCESS_KEY, SECRET=s3_server.SECRET_KEY)
    # s3rver's ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 (Node 17 on)
    # refuses without its legacy provider: a second page would be an InternalError.
    process = subprocess.Popen(["node", "--openssl-legacy-provider", "-e", S3RVER_LAUNCHER], env=env,
                               stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: s3_server._answers(port), timeout=30, what="s3rver to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def started(server: str, work: Path):
    return s3_server.start_moto() if server == "moto" else start_s3rver(work)


def _client(endpoint: str):
    """A client with the AWS environment's credentials (the tests' pair unless others were set)."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          config=Config(s3={"addressing_style": "path"}))


# One snapshot an hour up to the last hour (10,000: 14 months), so a page of the newest reads
# as it would for a team that snapshots hourly: the first day's window holds 24, the week's 168.
END = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _at(i: int, count: int) -> datetime:
    return END - timedelta(hours=count - 1 - i)


def _keys(layout: str, count: int) -> list[str]:
    """COUNT snapshots' objects (data, manifest, a pin on every 50th) as ``layout`` names them."""
    keys = []
    for i in range(count):
        name = snapshot_name("production", _at(i, count), i % 300, False, f"before migration {i}")
        size = 1000 + i
        if layout == "catalog":
            from commands.objstore import layout as catalog  # not in a checkout from before the catalog
            keys += [f"db/{catalog.data_file(name)}", f"db/{catalog.manifest_file(name, size)}"]
            keys += [f"db/{catalog.pin_file(name)}"] if i % 50 == 0 else []
        else:
            keys += [f"db/{name}{DATA_SUFFIX}", f"db/{name}{MANIFEST_SUFFIX}"]
            keys += [f"db/{name}{PIN_SUFFIX}"] if i % 50 == 0 else []
    return keys


def _union(spans: list[tuple[float, float]]) -> float:
    """How long at least one of ``spans`` (start, end) was under way."""
    total, reach = 0.0, float("-inf")
    for begin, end in sorted(spans):
        if end > reach:
            total += end - max(begin, reach)
            reach = end
    return total


def bench_list(endpoint: str, count: int, layout: str, server: str = "moto") -> dict:
    """``/snapshot list`` over COUNT snapshots written in ``layout`` ("catalog": what dbops
    writes now; "flat": what it wrote before, data, manifest and pin side by side)."""
    bucket = f"{BUCKET}-list-{layout}"
    client = _client(endpoint)
    client.create_bucket(Bucket=bucket)
    keys = _keys(layout, count)
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    print(f"  {len(keys):,} objects put in {time.perf_counter() - started:.0f} s ({server})", flush=True)
    settings = parse_settings({"environments": {"production": {
        "database_url": "postgresql://127.0.0.1:1/unused", "migrations_dir": "m",
        "snapshot_url": f"s3://{bucket}/db", "s3_endpoint_url": endpoint,
        "require_approval": []}}}, source="bench",
        base_dir=Path("/tmp"), environ={})
    env = settings.environment("production")
    ctx = Context(settings=settings, databases=None, snapshots=None, actor=Actor(user="bench"))
    # Each request from botocore's before-call to its after-call (sent, answered, parsed): the
    # store's share, as the union of those spans (they overlap when made at once); the rest of
    # the wall time is dbops' own (threads, names parsed, sorted, scoped, the result built).
    # Of the store's share, botocore's parsing of the XML answers (the CPU time of the thread
    # from before-parse to after-call, summed: parsing holds the GIL, so parallel threads do not
    # shorten it) is the part a faster store would not remove.
    spans: list[tuple[float, float]] = []
    parsing: list[float] = []
    parse_started = threading.local()
    events = store_for(env).client.meta.events
    events.register("before-call.s3", lambda context, **_: context.__setitem__("bench_started", time.perf_counter()))
    events.register("before-parse.s3", lambda **_: setattr(parse_started, "at", time.thread_time()))

    def answered(context, **_) -> None:
        spans.append((context["bench_started"], time.perf_counter()))
        parsing.append(time.thread_time() - parse_started.at)
    events.register("after-call.s3", answered)
    # the whole inventory (``--all``; what `/snapshot list` read before it showed a page), then the
    # page of the newest it shows now; a checkout from before pages has no ``all``: it read everything
    whole = SnapshotList(env="production", **({"all": True} if "all" in SnapshotList.__dataclass_fields__ else {}))
    out = {"server": server, "layout": layout, "count": count, "objects": len(keys), "target_s": LIST_TARGET_S}
    for label, command, expected in (("", whole, count), ("page_", SnapshotList(env="production"), PAGE)):
        if label and "all" not in SnapshotList.__dataclass_fields__:
            break
        runs = []
        for _ in range(5):
            spans.clear()
            parsing.clear()
            started = time.perf_counter()
            result = snapshot_ops.list_(ctx, command, env)
            runs.append((time.perf_counter() - started, _union(spans), sum(parsing), len(spans)))
            assert len(result.snapshots) == min(expected, count), len(result.snapshots)
        if label:  # the page is exactly the newest PAGE
            assert result.snapshots[0].created_at == _at(count - 1, count), result.snapshots[0]
            out["page_counted"] = result.counted
        median, store_share, parse_share, requests = sorted(runs)[2]  # the median run and its split
        out |= {f"{label}requests_per_list": requests, f"{label}median_s": round(median, 3),
                f"{label}min_s": round(min(run[0] for run in runs), 3), f"{label}store_share_s": round(store_share, 3),
                f"{label}botocore_parsing_s": round(parse_share, 3),
                f"{label}dbops_share_s": round(median - store_share, 3)}
    if layout == "catalog":
        out |= newest_page(store_for(env), count)
    return out


def newest_page(store, count: int, page: int = NEWEST_PAGE) -> dict:
    """What the next step (bench/RESULTS.md) would read for a page of the newest ``page``
    snapshots: each manifest folder from a cut-off time on (``StartAfter``: a folder's keys of
    one environment sort by the time in their name), plus the pins, all at once. Here the
    cut-off is the ``page``-th newest snapshot's time (a real one starts from a window and
    widens it until the page is full). Not dbops code: the read it would make, timed bare."""
    from commands.objstore import layout as catalog
    cutoff = f"production_{_at(count - page, count):%Y%m%d_%H%M%S}"
    client = store.client

    def folder(under: str, after: str = "") -> int:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=store._key(under), StartAfter=store._key(under + after) if after else "")
        return sum(len(answer.get("Contents", ())) for answer in pages)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        with ThreadPoolExecutor(len(catalog.SHARDS) + 1) as pool:
            pins = pool.submit(folder, catalog.PIN_DIR)
            found = sum(pool.map(lambda under: folder(under, cutoff), catalog.manifest_dirs()))
            pins.result()
        runs.append(time.perf_counter() - started)
        assert found == page, found
    return {"newest_page": page, "newest_page_requests": len(catalog.SHARDS) + 1,
            "newest_page_median_s": round(statistics.median(runs), 3)}


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
    client = _client(endpoint)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # --mb 0: no memory run
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--layout", choices=("catalog", "flat", "both"), default="both")
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--server", choices=("moto", "s3rver", "both"), default="moto",
                        help="the local server(s) to start; with both, the listing runs on each in turn "
                             "and the memory run on moto")
    parser.add_argument("--endpoint", help="an S3-compatible server already running (credentials from the "
                                           "AWS environment variables) instead of starting one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _credentials()
    use_snapshot_stores()
    results = {}
    servers = [args.endpoint] if args.endpoint else ["moto", "s3rver"] if args.server == "both" else [args.server]
    layouts = (("catalog", "flat") if args.layout == "both" else (args.layout,)) if args.count else ()
    with tempfile.TemporaryDirectory(prefix="dbops-s3-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        for n, server in enumerate(servers):
            running = iter([server]) if args.endpoint else started(server, work)
            endpoint = next(running)
            label = "endpoint" if args.endpoint else server
            try:
                for layout in layouts:
                    print(f"list, {layout} layout, {label} ...", flush=True)
                    key = f"list_{layout}" if len(servers) == 1 else f"list_{layout}_{label}"
                    results[key] = bench_list(endpoint, args.count, layout, label)
                    print(json.dumps(results[key]), flush=True)
                if args.mb and n == 0:
                    base_url = embedded.start(work / "data")
                    print("memory ...", flush=True)
                    results["memory"] = bench_memory(endpoint, base_url, args.mb, work)
                    print(json.dumps(results["memory"]), flush=True)
            finally:
                if not args.endpoint:
                    running.close()  # the embedded server stops when this process exits (cleanup_mode="stop")
    print(json.dumps(results, indent=2) if args.json else results)
    memory = results.get("memory", {})
    # the target is the user's list: the page where dbops shows one, else the whole listing
    listed = [value.get("page_median_s", value["median_s"]) for key, value in results.items()
              if key.startswith("list_catalog")]
    ok = (all(median < LIST_TARGET_S for median in listed)
          and memory.get("upload_peak_mb", 0) < MEMORY_TARGET_MB and memory.get("download_peak_mb", 0) < MEMORY_TARGET_MB)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
