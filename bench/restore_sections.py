"""Where a restore's server time goes on each server: the tables' data, then each key and index
(``--sections`` of bench/snapshots.py), to say why one server restores slower than another.

On every server, a ``pg_dump -Fc -Z0`` of its database is restored into a new database with
``pg_restore --section=pre-data --section=data -d`` (before 17 the server rejects pg_restore
18's ``SET transaction_timeout`` and the restore goes on: that error is expected), then the
generator's own key and index statements run one at a time through psql. Each part runs on every server in turn, after the
same settling, and the server's CPU time is reported beside the wall time: on shared cores
it is the comparison that holds.
"""

from __future__ import annotations

import os
from typing import Callable

from monitor import run_monitored
from pg_targets import unexpected_errors
from snapshot_data import INDEXES, create_database, drop_database

DATABASE = "bench_sections"
DATA = "tables and their rows (pre-data and data sections)"


def sections(beds: list, client: Callable[[str], str], settle: Callable[[], None], problems: list[str]) -> dict:
    """Time each part on each bed (bench/snapshots.py's ``Bed``); ``client(program)`` is the
    path of a client program. Returns ``{server: {part: {"seconds", "server_cpu_s"}}}``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    targets = {}
    for bed in beds:
        raw = bed.work / "sections.dump"
        done = run_monitored([("pg_dump", [client("pg_dump"), "-Fc", "-Z0", "-f", str(raw), "-d", bed.url])], env=env)
        problems.extend(f"{bed.name} sections, pg_dump -Z0: {e}" for e in done["errors"])
        targets[bed.name] = create_database(bed.target.url, DATABASE)

    def argv(bed, part: str) -> list[str]:
        if part == DATA:
            return [client("pg_restore"), "--section=pre-data", "--section=data", "-d", targets[bed.name],
                    str(bed.work / "sections.dump")]
        return [client("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", part, "-d", targets[bed.name]]

    out: dict[str, dict] = {bed.name: {} for bed in beds}
    print("\nrestore sections (--sections): wall time (server CPU)", flush=True)
    for part in (DATA, *INDEXES):
        for bed in beds:
            settle()
            result = run_monitored([("client", argv(bed, part))], env=env, server_pid=bed.target.pid)
            # pg_restore exits 1 for the expected SET transaction_timeout error alone ("errors ignored").
            unexpected = unexpected_errors(bed.name, result["stderr"]["client"])
            if unexpected or (result["errors"] and "ERROR:" not in result["stderr"]["client"]):
                problems.extend(f"{bed.name} sections, {part}: {e}" for e in unexpected or result["errors"])
            out[bed.name][part] = {"seconds": round(result["seconds"], 2),
                                   "server_cpu_s": round(result["cpu"].get("server", 0.0), 2)}
            print(f"  {bed.name:<10}{part[:70]:<72}{result['seconds']:6.1f} s ({out[bed.name][part]['server_cpu_s']:.1f})",
                  flush=True)
    for bed in beds:
        drop_database(bed.target.url, DATABASE)
        (bed.work / "sections.dump").unlink(missing_ok=True)
    return out


def markdown(parts: dict[str, dict]) -> str:
    """The parts side by side: wall time (server CPU) on each server, and the sum."""
    names = list(parts)
    first = names[0]
    lines = ["| restore part: wall time (server CPU) | " + " | ".join(names) + " | "
             + " | ".join(f"{n} / {first}, server CPU" for n in names[1:]) + " |",
             "|---|" + "---:|" * (2 * len(names) - 1)]
    rows = list(parts[first])
    totals = {n: {"seconds": sum(parts[n][p]["seconds"] for p in rows),
                  "server_cpu_s": sum(parts[n][p]["server_cpu_s"] for p in rows)} for n in names}
    for label, figures in [(p, {n: parts[n][p] for n in names}) for p in rows] + [("all parts", totals)]:
        cells = [f"{figures[n]['seconds']:.2f} s ({figures[n]['server_cpu_s']:.2f} s)" for n in names]
        base = figures[first]["server_cpu_s"]
        ratios = [f"{figures[n]['server_cpu_s'] / base:.2f}×" if base else "—" for n in names[1:]]
        lines.append(f"| `{label}` | " if label in INDEXES else f"| {label} | ")
        lines[-1] += " | ".join(cells + ratios) + " |"
    return "\n".join(lines)
