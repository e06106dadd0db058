"""Benchmark: `/migrate drift` on a schema of 400 tables, against `pg_dump --schema-only` of
the same database (issue 19's reference: a cached check should cost no more than about twice
that dump).

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/drift.py [--tables 400] [--repeat 5] [--json]

It starts the wheel's PostgreSQL 18 in a fresh data directory under /tmp, writes TABLES/10
migration files of ten tables each (a key, a foreign key to the previous table, a check, a
default, an index), applies them with `migrate up` through the Executor, and creates a
control database. Then it times, through the Executor as every surface runs it:

- the first drift check: the expected schema is built (every file applied to a scratch
  database on the same server, read, dropped) and cached in the control database;
- a cached drift check, REPEAT times: one catalog read of the live database, one cache read;
- the bundled `pg_dump --schema-only` of the live database, REPEAT times.

It prints the medians and the ratio cached/pg_dump. Exit status 0 when every drift check
found no drift and the later ones came from the cache, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cli.main import build_executor  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from commands import grammar  # noqa: E402
from commands.config import parse_settings  # noqa: E402
from commands.executor import Actor  # noqa: E402
from commands.pg import embedded  # noqa: E402
from commands.pg.tools import bundled_bin_dir, child_env  # noqa: E402
from commands.results import Outcome  # noqa: E402

TARGET_RATIO = 2.0
PER_FILE = 10


def migration(i: int) -> str:
    """File ``i`` (1-based): ten tables, each referring to the one before it."""
    statements = []
    for t in range((i - 1) * PER_FILE + 1, i * PER_FILE + 1):
        parent = f",\n    parent_id bigint REFERENCES t{t - 1:04} (id)" if t > 1 else ""
        statements.append(
            f"CREATE TABLE t{t:04} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            f"    name text NOT NULL DEFAULT '',\n    amount numeric(12, 2) CHECK (amount >= 0),\n"
            f"    created_at timestamptz NOT NULL DEFAULT now(){parent}\n);\n"
            f"CREATE INDEX t{t:04}_created_at ON t{t:04} (created_at);")
    return "\n".join(statements)


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning")  # the runs log every migration: keep stdout for the figures

    root = Path(tempfile.mkdtemp(prefix="dbops-bench-drift-", dir="/tmp"))
    try:
        base = embedded.start(root / "data")
        url = embedded.ensure_database(base, "bench_drift")
        control = embedded.ensure_database(base, "bench_drift_control")
        migrations = root / "migrations"
        migrations.mkdir()
        for i in range(1, args.tables // PER_FILE + 1):
            (migrations / f"{i}_tables_{i}.up.sql").write_text(migration(i))
        settings = parse_settings({"control": {"database_url": control},
                                   "environments": {"bench": {"database_url": url, "migrations_dir": str(migrations),
                                                              "pre_migration_snapshot": False,
                                                              "require_approval": []}}},
                                  source="bench", base_dir=root, environ={})
        executor = build_executor(settings)
        actor = Actor(user="bench")
        assert executor.run(grammar.parse("migrate up bench"), actor).outcome is Outcome.DONE
        drift = grammar.parse("migrate drift bench")
        first_s, first = timed(lambda: executor.run(drift, actor))
        cached = [timed(lambda: executor.run(drift, actor)) for _ in range(args.repeat)]
        dump = [bundled_bin_dir() / "pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-f", "/dev/null"]
        dumps = [timed(lambda: subprocess.run(dump, env=child_env(url), check=True))[0] for _ in range(args.repeat)]
        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] - 1
        ok = (first.outcome is Outcome.DONE and not first.cached
              and all(r.outcome is Outcome.DONE and r.cached for _, r in cached))
        cached_s, dump_s = statistics.median(s for s, _ in cached), statistics.median(dumps)
        figures = {"tables": tables, "files": args.tables // PER_FILE, "first_check_s": round(first_s, 3),
                   "built_on": first.built_on, "cached_check_median_s": round(cached_s, 3),
                   "pg_dump_schema_only_median_s": round(dump_s, 3),
                   "cached_over_pg_dump": round(cached_s / dump_s, 2), "target": f"<= {TARGET_RATIO}",
                   "met": cached_s / dump_s <= TARGET_RATIO, "checks_passed": ok}
        if args.json:
            print(json.dumps(figures))
        else:
            for key, value in figures.items():
                print(f"{key}: {value}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
