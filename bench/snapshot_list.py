"""Benchmark: `/snapshot list` over a directory of 10,000 snapshots (target: under 200 ms).

Not a test: run it by hand (see bench/README.md).

    .venv/bin/python bench/snapshot_list.py [--count 10000] [--repeat 20] [--json]

It writes COUNT snapshots (a small data file and a manifest each, named as dbops names them,
plus a pin marker on every 50th) into a temporary directory, then times the list operation
as the executor runs it (scan, parse names, sort, disk usage) and its rendering as the CLI
prints it: as text (the Slack card as terminal text, ``bot.terminal``) and as JSON. The
database is not involved in listing, so none is started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cli.shell import result_text  # noqa: E402

from bot.cli.outcome import result_json  # noqa: E402
from commands.snapshot import snapshot_ops  # noqa: E402
from commands.config import parse_settings  # noqa: E402
from commands.identity import Actor  # noqa: E402
from commands.context import Context
from commands.grammar import SnapshotList  # noqa: E402
from commands.snapshot.snapshots import DATA_SUFFIX, MANIFEST_SUFFIX, PIN_SUFFIX, snapshot_name  # noqa: E402

TARGET_MS = 200.0
RENDERERS = (("list+text", lambda result: result_text(result, command="snapshot list production")),
             ("list+json", lambda result: result_json(result, 0)))


def populate(directory: Path, count: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(count):
        when = start + timedelta(minutes=7 * i)
        name = snapshot_name("production", when, 20260101000 + i // 3, False, f"pre-migration v{i} to v{i + 1}")
        (directory / f"{name}{DATA_SUFFIX}").write_bytes(b"\0" * (100 + i % 900))
        (directory / f"{name}{MANIFEST_SUFFIX}").write_text(json.dumps({"name": name, "sha256": "0" * 64}))
        if i % 50 == 0:
            (directory / f"{name}{PIN_SUFFIX}").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dbops-bench-list-"))
    try:
        directory = root / "snapshots"
        directory.mkdir()
        (root / "migrations").mkdir()
        populate(directory, args.count)
        settings = parse_settings({"environments": {"production": {
            "database_url": "postgresql://unused@localhost/unused", "migrations_dir": str(root / "migrations"),
            "snapshot_dir": str(directory), "require_approval": []}}}, source="bench", base_dir=root, environ={})
        env = settings.environment("production")
        ctx = Context(settings=settings, databases=None, snapshots=None, actor=Actor(user="bench"))
        # CPU time too: on a shared machine the wall time says more about the neighbours.
        timings = {"list": [], "list CPU": [], "list+text": [], "list+json": []}
        for _ in range(args.repeat):
            for key, render in RENDERERS:
                started, cpu = time.perf_counter(), time.process_time()
                result = snapshot_ops.list_(ctx, SnapshotList(), env)
                listed = time.perf_counter()
                timings["list CPU"].append((time.process_time() - cpu) * 1000)
                render(result)
                done = time.perf_counter()
                timings["list"].append((listed - started) * 1000)
                timings[key].append((done - started) * 1000)
        assert len(result.snapshots) == args.count, len(result.snapshots)
        medians = {k: statistics.median(v) for k, v in timings.items()}
        worst = {k: max(v) for k, v in timings.items()}
        print(f"{args.count} snapshots, {args.repeat} runs (median / worst):")
        for key in timings:
            print(f"  {key:<10} {medians[key]:7.1f} ms / {worst[key]:7.1f} ms")
        verdict = "met" if max(worst.values()) < TARGET_MS else "NOT met"
        print(f"target: every run under {TARGET_MS:.0f} ms: {verdict}")
        if args.json:
            print(json.dumps({"benchmark": "snapshot_list", "count": args.count, "median_ms": medians,
                              "worst_ms": worst, "target_ms": TARGET_MS}))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
