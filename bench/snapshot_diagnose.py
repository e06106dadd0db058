"""The sub-steps behind bench/snapshots.py's figures (``--diagnose``): where the time goes.

pg_dump -Z0 alone, zstd alone (one thread, multi-threaded, levels 1 to 12, the zstd
program), sha256 alone, zstd decompression alone, the verify's pg_restore --list,
pg_restore | psql with and without a single transaction, gunzip | psql in one transaction,
pg_restore -j2 into a new database, the data and the post-data (index) sections apart, a
larger maintenance_work_mem, dbops' start-up, dbops create at snapshot_compression_level = 6,
zstd's memory by thread count, and the snapshot unpacked then restored with pg_restore -j2.
(dbops restore with restore_mode = new-database is one of the timed sides now.)

The psql steps stop at the first error (ON_ERROR_STOP), so they need a server that accepts
pg_restore 18's SQL as it is: PostgreSQL 17 or later.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import zstandard

from dbops_cli import dbops_program, peak_mb, run_dbops, write_config
from monitor import fmt_cpu, run_monitored
from snapshot_data import create_database, drop_database, human, row_counts

CHUNK = 1 << 20


class _Counter:
    """A file that only counts what is written to it."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def diagnose(base_url: str, url: str, bin_dir: Path, work: Path, snapshot: Path, legacy: Path,
             reference: dict[str, int], settle: Callable[[], None], problems: list[str], *, config: Path,
             server_pid: int = 0) -> dict:
    """Time the sub-steps on the server at ``base_url`` (whose postmaster is ``server_pid``),
    with the client programs in ``bin_dir``; ``settle`` runs before every timed step; ``config``
    is a dbops config for the database at ``url``. What goes wrong is appended to ``problems``."""
    out: dict[str, dict] = {}
    raw = work / "raw.dump"
    pg_dump, pg_restore, psql = (str(bin_dir / p) for p in ("pg_dump", "pg_restore", "psql"))

    def step(name: str, note: str, steps, tolerate_sigpipe: bool = False, **kw) -> dict:
        settle()
        result = run_monitored(steps, tolerate_sigpipe=tolerate_sigpipe, server_pid=server_pid, **kw)
        problems.extend(f"diagnose {name}: {e}" for e in result["errors"])
        out[name] = {"seconds": round(result["seconds"], 2), "cpu_s": {k: round(v, 1) for k, v in result["cpu"].items()},
                     "note": note}
        print(f"  {name:<44}{result['seconds']:>8.1f} s   cpu {fmt_cpu(result['cpu'])}", flush=True)
        return result

    def inproc(name: str, note: str, func) -> None:
        cpu0, t0 = time.process_time(), time.perf_counter()
        extra = func()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        out[name] = {"seconds": round(seconds, 2), "cpu_s": {"python": round(cpu, 1)}, "note": note, **(extra or {})}
        size = f"   {human(extra['size'])}" if extra and "size" in extra else ""
        print(f"  {name:<44}{seconds:>8.1f} s   cpu python {cpu:.1f} s{size}", flush=True)

    print("\nsub-steps (--diagnose):", flush=True)
    step("pg_dump -Fc -Z0 > /dev/null", "pg_dump alone, as dbops runs it", [("pg_dump", [pg_dump, "-Fc", "-Z0", "-d", url])],
         stdout_file=Path("/dev/null"))
    step("pg_dump -Fc -Z0 -f raw.dump", "the same to a file (input of the next steps)",
         [("pg_dump", [pg_dump, "-Fc", "-Z0", "-f", str(raw), "-d", url])])
    out["pg_dump -Fc -Z0 -f raw.dump"]["size"] = raw.stat().st_size

    def compress(threads: int, level: int = 3):
        def run():
            sink = _Counter()
            with open(raw, "rb") as src:
                writer = zstandard.ZstdCompressor(level=level, threads=threads).stream_writer(sink, closefd=False)
                while chunk := src.read(CHUNK):
                    writer.write(chunk)
                writer.flush(zstandard.FLUSH_FRAME)
            return {"size": sink.written}
        return run

    os.sync()
    inproc("zstd level 3, threads=-1 (as dbops)", "python-zstandard from the page cache, output counted", compress(-1))
    inproc("zstd level 3, threads=0 (one thread)", "the same, no worker threads", compress(0))
    for level in (1, 6, 9, 12):
        inproc(f"zstd level {level}, threads=-1", "the compression level: speed against size", compress(-1, level))
    step("zstd -3 -T2 (the zstd program)", "the zstd program on the same file",
         [("zstd", ["zstd", "-3", "-T2", "-c", str(raw)])], stdout_file=Path("/dev/null"))

    def sha():
        digest = hashlib.sha256()
        with open(raw, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
    inproc("sha256 of raw.dump", "hashlib", sha)

    def decompress():
        with open(snapshot, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            while reader.read(CHUNK):
                pass
    inproc("zstd decompression of the snapshot", "python-zstandard to nowhere", decompress)

    step("pg_restore --list (snapshot via zstd -dc)", "what dbops' verify runs before every restore",
         [("zstd", ["zstd", "-dc", str(snapshot)]), ("pg_restore", [pg_restore, "--list"])], stdout_file=Path("/dev/null"),
         tolerate_sigpipe=True)  # pg_restore stops reading once it has the table of contents

    def restore_into(name: str, note: str, database: str, make_steps, **kw) -> None:
        target = create_database(base_url, database)
        step(name, note, make_steps(target), **kw)
        counts = row_counts(target)
        if {k: v for k, v in counts.items() if k in reference} != reference:
            problems.append(f"diagnose {name}: row counts differ: {counts} != {reference}")
        drop_database(base_url, database)

    def psql_argv(*extra: str) -> list[str]:
        return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", *extra]

    restore_into("pg_restore -f - raw.dump | psql", "one stream, autocommit, empty database", "bench_diag_a",
                 lambda t: [("pg_restore", [pg_restore, "-f", "-", str(raw)]), ("psql", psql_argv("-d", t))])
    restore_into("pg_restore -f - raw.dump | psql -1", "one stream, single transaction (as dbops)", "bench_diag_b",
                 lambda t: [("pg_restore", [pg_restore, "-f", "-", str(raw)]), ("psql", psql_argv("-1", "-d", t))])
    restore_into("gunzip -c legacy | psql -1", "the legacy dump, single transaction", "bench_diag_c",
                 lambda t: [("gunzip", ["gunzip", "-c", str(legacy)]), ("psql", psql_argv("-1", "-d", t))])
    restore_into("pg_restore -j2 -d NEW raw.dump", "parallel restore (seekable file with offsets)", "bench_diag_d",
                 lambda t: [("pg_restore", [pg_restore, "-j2", "-d", t, str(raw)])])

    # Where the restore's time goes: the tables' data, then the indexes and constraints.
    target = create_database(base_url, "bench_diag_f")
    step("pg_restore --section=pre-data,data | psql -1", "tables and COPY only",
         [("pg_restore", [pg_restore, "--section=pre-data", "--section=data", "-f", "-", str(raw)]),
          ("psql", psql_argv("-1", "-d", target))])
    step("pg_restore --section=post-data | psql -1", "then the indexes and constraints (same database)",
         [("pg_restore", [pg_restore, "--section=post-data", "-f", "-", str(raw)]),
          ("psql", psql_argv("-1", "-d", target))])
    drop_database(base_url, "bench_diag_f")
    restore_into("pg_restore | psql -1, maintenance_work_mem=1GB", "a session setting dbops could pass (PGOPTIONS)",
                 "bench_diag_g",
                 lambda t: [("pg_restore", [pg_restore, "-f", "-", str(raw)]), ("psql", psql_argv("-1", "-d", t))],
                 env={**os.environ, "PGOPTIONS": "-c maintenance_work_mem=1GB"})

    # dbops' fixed costs: starting Python and importing, reading the config.
    step("dbops snapshot list (start-up)", "Python start, imports, config, one query",
         [("dbops", [dbops_program(), "snapshot", "list", "--config", str(config)])])

    # The compression level is a setting (snapshot_compression_level): the create at level 6.
    level6 = work / "dbops-level6.toml"
    write_config(level6, url, work / "snapshots-level6", work / "migrations", safety=False,
                 extra="snapshot_compression_level = 6\n")
    settle()
    result = run_dbops(["snapshot", "create", "--reason", "bench"], level6, server_pid=server_pid)
    problems.extend(f"diagnose dbops create level 6: {e}" for e in result["errors"])
    made = sorted((work / "snapshots-level6").glob("*.dump.zst"))
    out["dbops snapshot create, level 6"] = {"seconds": round(result["seconds"], 2), "cpu_s": result["cpu"],
                                             "rss_mb": peak_mb(result, "dbops"),
                                             "size": made[0].stat().st_size if made else None}
    print(f"  {'dbops snapshot create, level 6':<44}{result['seconds']:>8.1f} s   cpu {fmt_cpu(result['cpu'])}   "
          f"{human(made[0].stat().st_size) if made else '?'}, peak RSS {peak_mb(result, 'dbops')} MB", flush=True)
    shutil.rmtree(work / "snapshots-level6", ignore_errors=True)

    # The memory of multi-threaded zstd: dbops uses one worker per core (threads=-1).
    for threads in (1, 2, 4, 8):
        code = ("import zstandard, sys\n"
                "def hwm():\n"
                "    return [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] // 1024\n"
                "class Null:\n"
                "    def write(self, d): return len(d)\n"
                "    def flush(self): pass\n"
                "before = hwm()\n"
                f"w = zstandard.ZstdCompressor(level=3, threads={threads}).stream_writer(Null(), closefd=False)\n"
                f"f = open({str(raw)!r}, 'rb')\n"
                "while c := f.read(1 << 20):\n"
                "    w.write(c)\n"
                "w.flush(zstandard.FLUSH_FRAME)\n"
                "print(before, hwm())\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        try:
            before, after = (int(x) for x in done.stdout.split())
        except ValueError:
            problems.append(f"diagnose zstd memory threads={threads}: {done.stderr[-300:]}")
            continue
        out[f"zstd level 3 memory, threads={threads}"] = {"rss_growth_mb": after - before}
        print(f"  {'zstd level 3 memory, threads=' + str(threads):<44}  +{after - before} MB peak RSS over {before} MB",
              flush=True)

    # What an engine change could do: decompress the snapshot to a file, pg_restore -j from it.
    unpacked = work / "unpacked.dump"
    target = create_database(base_url, "bench_diag_e")
    settle()
    t0 = time.perf_counter()
    with open(unpacked, "wb") as fh:
        subprocess.run(["zstd", "-dc", str(snapshot)], stdout=fh, check=True)
    unpack_s = time.perf_counter() - t0
    result = run_monitored([("pg_restore", [pg_restore, "-j2", "-d", target, str(unpacked)])], server_pid=server_pid)
    problems.extend(f"diagnose pg_restore -j2 (snapshot): {e}" for e in result["errors"])
    total = time.perf_counter() - t0
    out["zstd -d snapshot > file; pg_restore -j2 -d NEW"] = {
        "seconds": round(total, 2), "unpack_s": round(unpack_s, 2),
        "note": "the snapshot dbops wrote (from a pipe: no data offsets), unpacked, then restored in parallel"}
    print(f"  {'zstd -d snapshot > file; pg_restore -j2 -d NEW':<44}{total:>8.1f} s   (unpack {unpack_s:.1f} s)",
          flush=True)
    if {k: v for k, v in row_counts(target).items() if k in reference} != reference:
        problems.append("diagnose pg_restore -j2 (snapshot): row counts differ")
    drop_database(base_url, "bench_diag_e")
    unpacked.unlink()
    raw.unlink()
    return out
