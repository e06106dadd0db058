"""The benchmark report of issue 10, measured side by side in one run on one machine.

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/side_by_side.py [--migrate PATH] [--out FILE] [--quick]

It runs the other benchmarks here one after the other, each as its own process with
``--json``, and prints one Markdown report of what they measured: applying 1,000
migrations (dbops, one psql session, and golang-migrate's ``migrate`` CLI where it is
installed), snapshot create and restore against the guide's commands (``pg_dump -Fc -Z9``,
``pg_dump | gzip``, ``gunzip -c | psql``) on PostgreSQL 18 and, in the same rounds, on
PostgreSQL 15 (the npm build and Debian's), ``/migrate status`` end to end through ``dbops
serve --http``, acknowledgement latency under load, and the bot's memory idle and during a
500 MB snapshot. Each line names the command that measures it on its own.

It takes about 10 minutes on 2 cores when nothing else runs, up to 15 under load
(``--quick``: smaller sizes, about 3 minutes, to check that everything runs; its figures are
not the report's). Disk: about 2 GB under /tmp.
Exit status 1 if any benchmark failed its own sanity checks (a command failed, a database
differed, a command was lost); whether a target is met does not change it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = ".venv/bin/python"
# The snapshot rows: PostgreSQL 18 (the wheel's) and 15 beside it, as the npm build the version
# matrix tests and as Debian's own build, measured in the same rounds.
SNAPSHOT_SERVERS = ["--server", "18", "--server", "15", "--server", "debian-15"]


def full_runs(migrate: str | None) -> list[tuple[str, list[str]]]:
    """(name, arguments) of each benchmark, in the order they run."""
    return [
        ("apply", ["apply_migrations.py", "--json", *(["--migrate", migrate] if migrate else [])]),
        ("snapshots", ["snapshots.py", *SNAPSHOT_SERVERS, "--size-mb", "300", "--repeat", "3", "--json"]),
        ("status_memory", ["status_and_memory.py", "--size-mb", "500", "--commands", "100", "--json"]),
        ("ack_200x20", ["slack_ack.py", "--json"]),
        ("ack_1000x50", ["slack_ack.py", "--commands", "1000", "--concurrency", "50", "--json"]),
    ]


def quick_runs(migrate: str | None) -> list[tuple[str, list[str]]]:
    return [
        ("apply", ["apply_migrations.py", "--count", "100", "--repeat", "1", "--settle", "0", "--json",
                   *(["--migrate", migrate] if migrate else [])]),
        ("snapshots", ["snapshots.py", *SNAPSHOT_SERVERS, "--size-mb", "60", "--repeat", "1", "--json"]),
        ("status_memory", ["status_and_memory.py", "--size-mb", "60", "--commands", "20", "--json"]),
        ("ack_200x20", ["slack_ack.py", "--commands", "40", "--json"]),
        ("ack_1000x50", ["slack_ack.py", "--commands", "100", "--concurrency", "50", "--json"]),
    ]


def run(name: str, args: list[str]) -> dict:
    """Run one benchmark, its output passed through to stderr; its JSON line, with its exit
    status and wall time added."""
    command = [sys.executable, str(BENCH / args[0]), *args[1:]]
    print(f"\n=== {name}: {' '.join([PY, 'bench/' + args[0], *args[1:]])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    found: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(line)
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                pass
    status = proc.wait()
    found.update(exit_status=status, wall_s=round(time.monotonic() - started, 1),
                 command=" ".join([PY, "bench/" + args[0], *args[1:]]))
    return found


# --- the report ---

def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def mb(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} MB"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**not met**")


def report(results: dict[str, dict], *, started: datetime, wall_s: float, commit: str) -> str:
    apply_, snaps = results.get("apply", {}), results.get("snapshots", {})
    status, ack, ack50 = results.get("status_memory", {}), results.get("ack_200x20", {}), results.get("ack_1000x50", {})
    medians = snaps.get("median_s", {}) if snaps else {}
    sizes = snaps.get("sizes", {}) if snaps else {}
    migrate = apply_.get("migrate")
    lines = [
        f"One invocation of `{PY} bench/side_by_side.py`, {started:%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"{wall_s / 60:.1f} minutes in all. Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {apply_.get('server_version', '?')} (embedded, default durability; the snapshot rows' servers as "
        "bench/pg_targets.py starts them). Each benchmark ran alone, one after the other; each row's last column is "
        "the command that measures it on its own.",
        "",
        "| measure | dbops | compared with | ratio | target | verdict | reproduce |",
        "|---|---:|---|---:|---|---|---|",
    ]
    count = apply_.get("count", "?")
    dbops_apply, psql_apply = apply_.get("dbops_median_s"), apply_.get("psql_median_s")
    lines.append(f"| apply {count} migrations (median of {apply_.get('repeat', '?')}) | {secs(dbops_apply)} | "
                 f"one psql session: {secs(psql_apply)} | {_x(ratio(dbops_apply, psql_apply))} | ≤ 1.5× psql | "
                 f"{verdict(apply_.get('within_target'))} | `{apply_.get('command', '')}` |")
    if migrate:
        migrate_apply = apply_.get("migrate_median_s")
        lines.append(f"| the same | {secs(dbops_apply)} | golang-migrate `migrate up` ({migrate.get('version')}): "
                     f"{secs(migrate_apply)} | {_x(ratio(dbops_apply, migrate_apply))} | — | — | "
                     f"`{apply_.get('command', '')}` |")
    else:
        lines.append("| the same | — | golang-migrate's `migrate` CLI: not installed on this machine | — | — | — | "
                     "`… apply_migrations.py --migrate PATH` |")
    database_mb = (snaps.get("database_bytes") or 0) / 2**20
    create, z9, gz = medians.get("dbops_create"), medians.get("pg_dump_z9"), medians.get("pg_dump_gzip")
    restore, gunzip = medians.get("dbops_restore"), medians.get("gunzip_psql")
    restore_safe = medians.get("dbops_restore_safety")
    snap_cmd = f"`{snaps.get('command', '')}`"
    create_rss = _peak_rss(snaps, "dbops_create")
    lines += [
        f"| snapshot create, {database_mb:.0f} MB database (median of {snaps.get('repeat', '?')}) | {secs(create)}, "
        f"{mb(_mb(sizes.get('dbops_create')))} | `pg_dump -Fc -Z9`: {secs(z9)}, {mb(_mb(sizes.get('pg_dump_z9')))} | "
        f"{_x(ratio(z9, create))} faster; size {_x(ratio(sizes.get('dbops_create'), sizes.get('pg_dump_z9')))} | "
        f"≥ 3× faster, no larger | {verdict(_targets(snaps, 'create'))} | {snap_cmd} |",
        f"| the same | {secs(create)} | `pg_dump \\| gzip` (the guide's .sql.gz): {secs(gz)}, "
        f"{mb(_mb(sizes.get('pg_dump_gzip')))} | {_x(ratio(gz, create))} faster | — | — | {snap_cmd} |",
        f"| snapshot restore (no safety snapshot) | {secs(restore)} | `gunzip -c \\| psql` into an empty database: "
        f"{secs(gunzip)} | {_x(ratio(gunzip, restore))} as fast | ≥ 1.5× faster | {verdict(_targets(snaps, 'restore'))} "
        f"| {snap_cmd} |",
        f"| snapshot restore, default (safety snapshot first) | {secs(restore_safe)} | the same: {secs(gunzip)} | "
        f"{_x(ratio(gunzip, restore_safe))} as fast | — | — | {snap_cmd} |",
        f"| snapshot restore, `restore_mode = \"new-database\"` | {secs(medians.get('dbops_restore_newdb'))} | the "
        f"same: {secs(gunzip)} | {_x(ratio(gunzip, medians.get('dbops_restore_newdb')))} as fast | — | — | {snap_cmd} |",
        f"| snapshot create, peak RSS of the dbops process | {mb(create_rss)} | — | — | < 150 MB | "
        f"{verdict(create_rss < 150 if create_rss is not None else None)} | {snap_cmd} |",
    ]
    lines += _other_servers(snaps, snap_cmd)
    seq, c10 = status.get("status_seq_ms", {}), status.get("status_c10_ms", {})
    cli, psql = status.get("cli_ms", {}), status.get("psql_ms", {})
    status_cmd = f"`{status.get('command', '')}`"
    lines += [
        f"| `/migrate status` end to end, sequential (p50 / p99 of {seq.get('n', '?')}) | "
        f"{ms(seq.get('p50'))} / {ms(seq.get('p99'))} | `dbops migrate status` CLI process: {ms(cli.get('p50'))}; "
        f"bare `psql -c 'SELECT version, dirty …'`: {ms(psql.get('p50'))} | "
        f"{_x(ratio(cli.get('p50'), seq.get('p50')))} faster than the CLI | — | — | {status_cmd} |",
        f"| `/migrate status` end to end, 10 in flight (p50 / p99) | {ms(c10.get('p50'))} / {ms(c10.get('p99'))} | — "
        f"| — | — | — | {status_cmd} |",
    ]
    for item in (ack, ack50):
        acks = item.get("ack_ms") or {}
        label = f"{item.get('commands', '?'):,} commands, {item.get('concurrency', '?')} in flight"
        lines.append(f"| ack latency under load, {label} (p50 / p99) | {ms(acks.get('p50'))} / "
                     f"{ms(acks.get('p99'))} | Slack's limit: 3,000 ms | — | p99 < 300 ms | "
                     f"{verdict(acks.get('p99') < 300 if acks.get('p99') is not None else None)} "
                     f"(answered {item.get('answered', '?')}, lost {item.get('lost', '?')}) | `{item.get('command', '')}` |")
    idle = status.get("rss_idle_mb") or [None, None]
    peak, tree = status.get("snapshot_bot_peak_mb"), status.get("snapshot_tree_peak_mb")
    lines += [
        f"| bot memory idle (RSS, 5 s after the status rounds) | {mb(idle[1])} | — | — | < 200 MB | "
        f"{verdict(idle[1] < 200 if idle[1] else None)} | {status_cmd} |",
        f"| bot memory during `/snapshot create` of a {status.get('big_db_mb') or 0:.0f} MB database "
        f"(peak; bot + children) | {mb(peak)}; {mb(tree)} | — | — | bot < 200 MB; snapshot work < 150 MB | "
        f"{verdict(peak < 200 and tree < 150 if peak and tree else None)} | {status_cmd} |",
    ]
    failed = [f"{name} (exit {r.get('exit_status')})" for name, r in results.items() if r.get("exit_status")]
    if failed:
        lines += ["", f"**Sanity checks failed in: {', '.join(failed)}** (see the output above)."]
    return "\n".join(lines) + "\n"


def _other_servers(snaps: dict, snap_cmd: str) -> list[str]:
    """The snapshot rows of every server after the first, each time beside the first server's
    (measured in the same rounds, interleaved)."""
    servers = snaps.get("servers") or {}
    names = snaps.get("order") or list(servers)
    rows = []
    for name in names[1:]:
        info = servers[name]
        med, sizes = info["median_s"], info["sizes"]

        def beside(key: str) -> str:
            return f"{secs(med[key])} ({names[0]}: {secs(servers[names[0]]['median_s'][key])})"

        on = f"on PostgreSQL {info['version'].split()[0]}, {info['source']}"
        rows += [
            f"| snapshot create {on} | {beside('dbops_create')}, {mb(_mb(sizes['dbops_create']))} | "
            f"`pg_dump \\| gzip`: {beside('pg_dump_gzip')}, {mb(_mb(sizes['pg_dump_gzip']))} | "
            f"{_x(ratio(med['pg_dump_gzip'], med['dbops_create']))} faster | — | — | {snap_cmd} |",
            f"| snapshot restore {on}, in place, no safety snapshot | {beside('dbops_restore')} | "
            f"`gunzip -c \\| psql`: {beside('gunzip_psql')} | {_x(ratio(med['gunzip_psql'], med['dbops_restore']))} "
            f"as fast | ≥ 1.5× faster | {verdict((info.get('targets_met') or {}).get('restore'))} | {snap_cmd} |",
            f"| the same, `restore_mode = \"new-database\"` | {beside('dbops_restore_newdb')} | the same | "
            f"{_x(ratio(med['gunzip_psql'], med['dbops_restore_newdb']))} as fast | — | — | {snap_cmd} |",
        ]
    return rows


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _mb(value: float | int | None) -> float | None:
    return None if value is None else value / 2**20


def _targets(snaps: dict, which: str) -> bool | None:
    met = snaps.get("targets_met") or {}
    value = met.get(which)
    return value if isinstance(value, bool) else None


def _peak_rss(snaps: dict, side: str) -> float | None:
    """The highest peak RSS (MB) of ``side`` over the snapshot benchmark's runs."""
    peaks = [r[side]["rss_mb"] for r in snaps.get("runs") or [] if isinstance(r.get(side), dict) and "rss_mb" in r[side]]
    return max(peaks) if peaks else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--migrate", metavar="PATH", help="golang-migrate's CLI (default: `migrate` on PATH, if any)")
    parser.add_argument("--out", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check that everything runs")
    parser.add_argument("--json", action="store_true", help="also print every benchmark's JSON as one line")
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip() or "?"
    # Changes to the results file itself (pasting the last report) are not changes to what is measured.
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/RESULTS.md"],
                           cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    runs = (quick_runs if args.quick else full_runs)(args.migrate)
    results = {name: run(name, bench_args) for name, bench_args in runs}
    text = report(results, started=started, wall_s=time.monotonic() - clock,
                  commit=commit + (" with uncommitted changes" if dirty else ""))
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.json:
        print(json.dumps(results, default=str))
    return 1 if any(r.get("exit_status") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
