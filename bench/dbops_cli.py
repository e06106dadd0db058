"""dbops as the benchmarks run it: the installed console script, a TOML config written here,
``--format json``, watched by bench/monitor.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from monitor import run_monitored

MB = 1024 * 1024


def dbops_program() -> str:
    """The dbops console script of the interpreter running this (the checkout's .venv)."""
    candidate = Path(sys.executable).parent / "dbops"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbops")
    if found is None:
        sys.exit("dbops is not installed next to this Python; run with the checkout's .venv/bin/python")
    return found


def write_config(path: Path, url: str, snapshots: Path, migrations: Path, *, safety: bool,
                 mode: str = "in-place", extra: str = "") -> None:
    path.write_text(
        "[environments.bench]\n"
        f"database_url = {json.dumps(url)}\n"
        f"migrations_dir = {json.dumps(str(migrations))}\n"
        f"snapshot_dir = {json.dumps(str(snapshots))}\n"
        "lock_wait_seconds = 2\n"
        # The bench times the restore itself; a second person's approval is not part of it.
        "require_approval = []\n"
        f"pre_migration_snapshot = {'true' if safety else 'false'}\n"
        f"restore_mode = {json.dumps(mode)}\n" + extra,
        encoding="utf-8")


def run_dbops(args: list[str], config: Path, *, server_pid: int = 0) -> dict:
    """``dbops ARGS --config CONFIG --format json`` under the monitor; its JSON as ``result``."""
    result = run_monitored([("dbops", [dbops_program(), *args, "--config", str(config), "--format", "json"])],
                           server_pid=server_pid)
    try:
        result["result"] = json.loads(result["stdout"].decode("utf-8"))
    except ValueError:
        result["result"] = None
        result["errors"].append(f"dbops printed no JSON: {result['stdout'][-500:]!r}")
    return result


def peak_mb(result: dict, role: str) -> float:
    return round(max(result["peaks"].get(role, 0), result["hwm"].get(role, 0)) / MB, 1)
