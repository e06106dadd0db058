"""Benchmark: how long `dbops migrate status` takes as a process, side by side with a bare
`python -c "import psycopg"` (issue "What a newcomer trips over", item 9).

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/cli_startup.py [--runs 30] [--warmup 3] [--json]
    .venv/bin/python bench/cli_startup.py --baseline /tmp/dbops-before   # a third side: another checkout's status

In one run it:

1. starts a throw-away embedded PostgreSQL 18 under /tmp with a managed database (the demo
   migrations, 3 of 6 applied) and a control database, and writes the configuration;
2. runs, ``--warmup`` times each and then ``--runs`` rounds, interleaved (the order alternates
   every round so that a drift in the machine's load falls on both sides):
   ``dbops migrate status --config …`` (the installed ``dbops`` script beside this Python, or
   ``python -m bot.cli.main`` when there is none, with this checkout first on PYTHONPATH) and
   ``python -c "import psycopg"``; each as a fresh process, timed from spawn to exit;
3. prints the median, quartiles and range of each side, and the ratio of the medians against
   the target (the status within 1.5x of the bare import). Exit status 1 if a status run did
   not exit 0 or did not print the status.

``--baseline DIR`` adds a third side: the same status from another checkout of dbops (say,
``git archive`` of an older commit unpacked in DIR), interleaved with the other two.

Both sides run with bytecode cached, as an installed package has it: the children get
``PYTHONPYCACHEPREFIX`` in the temporary directory (so nothing is written into the checkout)
and never ``PYTHONDONTWRITEBYTECODE``; the warm-up runs fill the cache.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.pg import embedded  # noqa: E402

TARGET = 1.5
MIGRATIONS = ROOT / "deploy" / "demo" / "migrations"


def child_environ(cache: Path, checkout: Path = ROOT) -> dict[str, str]:
    """This environment without what could steer a child elsewhere, ``checkout`` first on the
    path, and bytecode cached under ``cache``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "SLACK_", "DBOPS_")) and k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    return {**env, "PYTHONPATH": str(checkout), "PYTHONPYCACHEPREFIX": str(cache)}


def dbops_command() -> list[str]:
    script = Path(sys.executable).parent / "dbops"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli.main"]


def run_once(argv: list[str], env: dict[str, str],
             cwd: Path = ROOT) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds (user + system, the child's own) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def summary(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median_ms": median * 1000, "q1_ms": q1 * 1000, "q3_ms": q3 * 1000, "min_ms": min(values) * 1000,
            "max_ms": max(values) * 1000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed rounds, each one run of each side (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each side first (default 3)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument("--baseline", type=Path, help="another checkout of dbops whose status to time as well")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.warmup < 1:
        parser.error("--runs must be at least 2 and --warmup at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # A short path: the server's Unix socket lives in its data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-cli-", dir="/tmp"))
    # Registered before the server starts, so it runs after the wheel's handler stopped it.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    base_url = embedded.start(root / "data")
    config = root / "dbops.toml"
    config.write_text(f'''[control]
database_url = "{embedded.ensure_database(base_url, "dbops_control")}"

[environments.bench]
database_url = "{embedded.ensure_database(base_url, "bench_app")}"
migrations_dir = "{MIGRATIONS}"
snapshot_dir = "{root / "snapshots"}"
require_approval = []
''')
    env = child_environ(root / "pycache")
    dbops = dbops_command()
    status = [*dbops, "migrate", "status", "--config", str(config)]
    bare = [sys.executable, "-c", "import psycopg"]
    setup = subprocess.run([*dbops, "migrate", "up", "3", "--config", str(config)], env=env, cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        print(f"dbops migrate up 3 failed ({setup.returncode}):\n{setup.stdout}{setup.stderr}", file=sys.stderr)
        return 1

    order = [("status", status, env, ROOT), ("psycopg", bare, env, ROOT)]
    if args.baseline:  # run in its directory: `python -m` puts the current one first on the path
        baseline = args.baseline.resolve()
        cli = "bot.cli.main" if (baseline / "bot" / "cli" / "main.py").exists() else "bot.cli"  # before the layout by capability
        order.append(("baseline", [sys.executable, "-m", cli, *status[len(dbops):]],
                      child_environ(root / "pycache-baseline", baseline), baseline))
    for _ in range(args.warmup):
        for _name, argv_, env_, cwd in order:
            run_once(argv_, env_, cwd)
    sides: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name, *_ in order}
    failures = []
    for i in range(args.runs):
        for name, argv_, env_, cwd in order if i % 2 == 0 else order[::-1]:
            wall, cpu, done = run_once(argv_, env_, cwd)
            sides[name]["wall"].append(wall)
            sides[name]["cpu"].append(cpu)
            shown = "bench: version 20260128003 (clean)" in done.stdout
            if name != "psycopg" and (done.returncode != 0 or not shown):
                failures.append(f"{name}: exit {done.returncode}: {(done.stdout + done.stderr)[-500:]}")

    wall = {name: summary(s["wall"]) for name, s in sides.items()}
    cpu = {name: summary(s["cpu"]) for name, s in sides.items()}
    ratio = wall["status"]["median_ms"] / wall["psycopg"]["median_ms"]
    cpu_ratio = cpu["status"]["median_ms"] / cpu["psycopg"]["median_ms"]
    print(f"{args.runs} interleaved rounds on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"status is `{' '.join(Path(dbops[0]).name if j == 0 else a for j, a in enumerate(dbops))} migrate status`")
    print(f"{'':34}{'median':>9}{'q1':>9}{'q3':>9}{'min':>9}{'max':>9}   (wall ms)")
    labels = {"status": "dbops migrate status", "psycopg": 'python -c "import psycopg"',
              "baseline": "the baseline's migrate status"}
    for name in sides:
        s = wall[name]
        print(f"{labels[name]:34}{s['median_ms']:9.0f}{s['q1_ms']:9.0f}{s['q3_ms']:9.0f}{s['min_ms']:9.0f}"
              f"{s['max_ms']:9.0f}")
    print(f"ratio of medians: {ratio:.2f}x wall (target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}); "
          f"CPU {cpu['status']['median_ms']:.0f} ms against {cpu['psycopg']['median_ms']:.0f} ms, {cpu_ratio:.2f}x")
    if "baseline" in sides:
        print(f"baseline: {wall['baseline']['median_ms'] / wall['psycopg']['median_ms']:.2f}x wall, "
              f"{cpu['baseline']['median_ms'] / cpu['psycopg']['median_ms']:.2f}x CPU "
              f"({cpu['baseline']['median_ms']:.0f} ms) against the same bare import")
    if failures:
        print(f"{len(failures)} status runs failed; the first: {failures[0]}", file=sys.stderr)
    if args.json:
        print(json.dumps({"benchmark": "cli_startup", "runs": args.runs, "wall": wall, "cpu": cpu,
                          "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3), "target": TARGET,
                          "met": ratio <= TARGET, "failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
