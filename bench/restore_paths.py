"""Benchmark: a ~500 MB database snapshotted and restored by dbops, to local disk and to object
storage, beside the practical floor and the guide's way (issue 20, item 5 and "Must show").

Not a test: run it by hand (see bench/README.md).

    .venv/bin/python bench/restore_paths.py [--mb 500] [--rounds 2] [--json]

One durable PostgreSQL 18 (bench/pg_targets.py), moto's standalone S3 server on a local port
(tests/s3_server.py), and one database of about MB megabytes built with SQL: customers, orders,
order lines and events, with primary keys, foreign keys, secondary and partial indexes.

  create     ``dbops snapshot create`` into a directory and into the bucket
  restore    ``dbops snapshot restore`` in new-database mode (no safety snapshot: the
             restore alone), from the directory and from the bucket, with restore_jobs
             "auto" (pg_restore --jobs, sized to the server) and 1 (one transaction)
  floor      createdb + ``pg_restore -j2`` of the same archive, already on disk, uncompressed
  guide      ``pg_dump | gzip`` then createdb + ``gunzip -c | psql`` (the guide's commands)
  memory     the dbops process's peak RSS (bench/monitor.py: /proc, every 50 ms, and the
             kernel's VmHWM) during each create and restore: target under 150 MB

Every program runs as its own process; dbops is this checkout's (PYTHONPATH). The machine's
load over each step is printed beside it (CPU seconds other work used meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
os.environ.update(PYTHONPATH=str(ROOT), DBOPS_LOG_LEVEL="INFO")  # this checkout's dbops; its restore.unpacked event

import psycopg  # noqa: E402
import zstandard  # noqa: E402
from psycopg import sql  # noqa: E402

import pg_targets  # noqa: E402
from commands.pg import embedded  # noqa: E402
from commands.pg.tools import bundled_bin_dir, child_env  # noqa: E402
from dbops_cli import dbops_program, peak_mb  # noqa: E402
from monitor import run_monitored  # noqa: E402
from tests import s3_server  # noqa: E402

BUCKET = "bench-restore"
TARGET_MB = 150.0
DB = "shop"

SCHEMA = """
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE,
                        name text NOT NULL, country char(2) NOT NULL, created_at timestamptz NOT NULL,
                        profile jsonb NOT NULL);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer_id bigint NOT NULL REFERENCES customers, status text NOT NULL,
                     total numeric(12, 2) NOT NULL, placed_at timestamptz NOT NULL, note text);
CREATE TABLE order_lines (order_id bigint NOT NULL REFERENCES orders, line int NOT NULL, sku text NOT NULL,
                          qty int NOT NULL CHECK (qty > 0), price numeric(10, 2) NOT NULL,
                          PRIMARY KEY (order_id, line));
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers, kind text NOT NULL,
                     at timestamptz NOT NULL, payload jsonb NOT NULL);
"""
INDEXES = """
CREATE INDEX orders_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX orders_open ON orders (placed_at) WHERE status <> 'delivered';
CREATE INDEX order_lines_sku ON order_lines (sku);
CREATE INDEX events_customer ON events (customer_id, at);
CREATE INDEX customers_country ON customers (country, created_at);
"""


def build(url: str, mb: int) -> int:
    """The shop database at about ``mb`` MB (its size, in bytes, returned)."""
    k = mb / 780  # at k = 1 these rows and indexes take 780 MB on PostgreSQL 18
    customers, orders, events = int(250_000 * k), int(1_500_000 * k), int(400_000 * k)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("""INSERT INTO customers (email, name, country, created_at, profile)
            SELECT 'user' || g || '@example.' || (ARRAY['com','org','net','de'])[1 + g %% 4],
                   initcap(md5(g::text)), (ARRAY['DE','FR','US','GB','JP','BR'])[1 + g %% 6],
                   timestamptz '2020-01-01' + g * interval '7 minutes',
                   jsonb_build_object('plan', (ARRAY['free','pro','team'])[1 + g %% 3], 'seats', g %% 50,
                                      'tags', jsonb_build_array(md5((g * 3)::text), g %% 17))
            FROM generate_series(1, %s::bigint) g""", (customers,))
        for lo in range(0, orders, 500_000):
            conn.execute("""INSERT INTO orders (customer_id, status, total, placed_at, note)
                SELECT 1 + (g * 7919) %% %s::bigint, (ARRAY['new','paid','shipped','delivered'])[1 + g %% 4],
                       (g %% 100000) / 100.0, timestamptz '2022-01-01' + g * interval '1 minute',
                       CASE WHEN g %% 5 = 0 THEN 'gift: ' || md5(g::text) END
                FROM generate_series(%s::bigint, %s::bigint) g""", (customers, lo + 1, min(lo + 500_000, orders)))
            conn.execute("""INSERT INTO order_lines (order_id, line, sku, qty, price)
                SELECT o, l, 'SKU-' || ((o * l * 31) %% 20000), 1 + (o + l) %% 5, ((o * l) %% 9999) / 100.0
                FROM generate_series(%s::bigint, %s::bigint) o, generate_series(1, 2) l""", (lo + 1, min(lo + 500_000, orders)))
        conn.execute("""INSERT INTO events (customer_id, kind, at, payload)
            SELECT 1 + g %% %s::bigint, (ARRAY['login','view','cart','checkout'])[1 + g %% 4],
                   timestamptz '2024-01-01' + g * interval '3 seconds',
                   jsonb_build_object('ip', '10.' || g %% 250 || '.' || g %% 199 || '.7', 'ua', md5(g::text),
                                      'path', '/p/' || g %% 5000, 'ms', g %% 900)
            FROM generate_series(1, %s::bigint) g""", (customers, events))
        conn.execute(INDEXES)
        conn.execute("VACUUM ANALYZE")
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def fingerprint(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines),"
            " (SELECT count(*) FROM events), (SELECT sum(total) FROM orders), (SELECT count(*) FROM pg_indexes "
            "WHERE schemaname = 'public'), (SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace)"
        ).fetchone()


def recreate(base_url: str, name: str) -> str:
    return embedded.recreate_database(base_url, name)


def checkpoint(base_url: str) -> None:
    """Write out what the last step left in shared buffers, so no step pays for the one before."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def drop(base_url: str, name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def config(path: Path, url: str, *, where: str, endpoint: str, snapshots: Path, jobs: str) -> Path:
    place = (f"snapshot_url = \"s3://{BUCKET}/shop\"\ns3_endpoint_url = {json.dumps(endpoint)}\n" if where == "s3"
             else f"snapshot_dir = {json.dumps(str(snapshots))}\n")
    path.write_text(f"[environments.bench]\ndatabase_url = {json.dumps(url)}\nmigrations_dir = \"m\"\n{place}"
                    "require_approval = []\npre_migration_snapshot = false\nrestore_mode = \"new-database\"\n"
                    f"restore_jobs = {jobs}\n", encoding="utf-8")
    return path


def dbops(args: list[str], cfg: Path, server_pid: int) -> dict:
    run = run_monitored([("dbops", [dbops_program(), *args, "--config", str(cfg), "--format", "json"])],
                        server_pid=server_pid)
    if run["codes"] != [0]:
        raise SystemExit(f"dbops {' '.join(args)} failed: {run['errors']} {run['stdout'][-2000:]!r}")
    run["result"] = json.loads(run["stdout"])
    return run


def row(run: dict, **extra) -> dict:
    other = max(0.0, run["machine_cpu_s"] - sum(run["cpu"].values()) - run["bench_cpu_s"])
    return {"s": round(run["seconds"], 1), "peak_mb": peak_mb(run, "dbops") if "dbops" in run["peaks"] else None,
            "cpu_s": {role: round(seconds, 1) for role, seconds in run["cpu"].items()}, "other_cpu_s": round(other, 1),
            **extra}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID=s3_server.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3_server.SECRET_KEY,
                      AWS_DEFAULT_REGION="us-east-1")
    bin_dir = bundled_bin_dir()
    out: dict = {"load_before": os.getloadavg()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dbops-restore-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        (work / "m").mkdir()
        target = pg_targets.start("18")
        moto = s3_server.start_moto()
        endpoint = next(moto)
        try:
            s3_server.client(endpoint).create_bucket(Bucket=BUCKET)
            base, pid = target.url, target.pid
            url = recreate(base, DB)
            print("building the database ...", flush=True)
            out["database_bytes"] = build(url, args.mb)
            expected = fingerprint(url)
            out["rows"] = expected[:4]
            print(f"  {out['database_bytes'] / 1e6:.0f} MB: {expected}", flush=True)
            cfg = {(where, jobs): config(work / f"{where}-{jobs}.toml", url, where=where, endpoint=endpoint,
                                         snapshots=work / "snapshots", jobs=jobs)
                   for where in ("local", "s3") for jobs in ('"auto"', "1")}

            for where in ("local", "s3"):
                print(f"dbops snapshot create ({where}) ...", flush=True)
                checkpoint(base)
                run = dbops(["snapshot", "create", "--reason", "bench"], cfg[(where, '"auto"')], pid)
                snap = run["result"]["snapshot"]
                out[f"create_{where}"] = row(run, name=snap["name"], snapshot_mb=round(snap["size"] / 1e6, 1))
                print(f"  {out[f'create_{where}']}", flush=True)

            # The floor's archive: the same bytes, uncompressed on disk before its clock starts.
            archive = work / "shop.dump"
            unpack = time.perf_counter()
            with open(work / "snapshots" / f"{out['create_local']['name']}.dump.zst", "rb") as src, \
                    open(archive, "wb") as dst:
                zstandard.ZstdDecompressor().copy_stream(src, dst, write_size=1 << 20)
            out["unpack_s"] = round(time.perf_counter() - unpack, 1)
            out["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
            # The guide's snapshot: pg_dump | gzip > file.
            dump = work / "shop.sql.gz"
            checkpoint(base)
            run = run_monitored([("pg_dump", [str(bin_dir / "pg_dump"), "--no-password"]), ("gzip", ["gzip"])],
                                env=child_env(url), stdout_file=dump, server_pid=pid)
            assert run["codes"] == [0, 0], run["errors"]
            out["guide_create"] = row(run, snapshot_mb=round(dump.stat().st_size / 1e6, 1))
            print(f"guide: pg_dump | gzip {out['guide_create']}", flush=True)

            def floor() -> dict:
                recreate(base, "floor")
                checkpoint(base)
                run = run_monitored([("pg_restore", [str(bin_dir / "pg_restore"), "--jobs=2", "--no-password",
                                                     "--dbname=floor", str(archive)])],
                                    env=child_env(base, dbname="floor"), server_pid=pid)
                assert run["codes"] == [0], run["errors"]
                assert fingerprint(embedded.database_url(base, "floor")) == expected
                drop(base, "floor")
                return row(run)

            def guide() -> dict:
                recreate(base, "guide")
                checkpoint(base)
                run = run_monitored([("gunzip", ["gunzip", "-c", str(dump)]),
                                     ("psql", [str(bin_dir / "psql"), "--no-psqlrc", "--quiet",
                                               "--set=ON_ERROR_STOP=1", "--output=/dev/null"])],
                                    env=child_env(base, dbname="guide"), server_pid=pid)
                assert run["codes"] == [0, 0], run["errors"]
                assert fingerprint(embedded.database_url(base, "guide")) == expected
                drop(base, "guide")
                return row(run)

            def restore(where: str, jobs: str) -> dict:
                checkpoint(base)
                run = dbops(["snapshot", "restore", out[f"create_{where}"]["name"]], cfg[(where, jobs)], pid)
                result = run["result"]
                assert fingerprint(url) == expected
                drop(base, result["kept_database"])
                unpacked = [json.loads(line)["seconds"] for line in run["stderr"]["dbops"].splitlines()
                            if '"restore.unpacked"' in line]  # dbops' JSON log: download and unpack
                return row(run, jobs=result["jobs"], restore_step_s=round(result["duration_ms"] / 1000, 1),
                           unpack_s=unpacked[0] if unpacked else None)

            steps = {"floor_j2": floor, "guide_restore": guide}
            for where in ("local", "s3"):
                for jobs in ('"auto"', "1"):
                    steps[f"restore_{where}_{jobs.strip(chr(34))}"] = lambda where=where, jobs=jobs: restore(where, jobs)
            for n in range(args.rounds):  # interleaved, so a burst of other work falls on one round of each
                for key, step in steps.items():
                    print(f"round {n + 1}: {key} ...", flush=True)
                    out.setdefault(key, []).append(step())
                    print(f"  {out[key][-1]}", flush=True)
        finally:
            moto.close()
            target.stop()
    out["load_after"] = os.getloadavg()
    out["total_s"] = round(time.perf_counter() - started)
    print(json.dumps(out, indent=2) if args.json else out)
    runs = [v for value in out.values() for v in (value if isinstance(value, list) else [value])]
    peaks = [v["peak_mb"] for v in runs if isinstance(v, dict) and v.get("peak_mb")]
    return 0 if max(peaks) < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
