"""The zero-setup demo: an embedded PostgreSQL and a ``demo`` environment with shipped migrations.

``dbops migrate …`` with no configuration runs on the ``demo`` database, which keeps its state
between runs. ``dbops console`` with no configuration gets its own ``console_demo`` database,
emptied at every start (and its snapshot directory with it) so that a scripted tour reads the
same each time; the channel is the console's, and the demo user bob approves. A shell has no
second person to approve, so the shell's demo requires no approval (a request there could
never be answered, which the configuration refuses).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import platformdirs

from bot.console.channels import CONSOLE_CHANNEL
from commands.config import Settings, parse_settings
from commands.pg import embedded

DEMO_MIGRATIONS = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "migrations"
CONSOLE_USERS = {"alice": "U0ALICE", "bob": "U0BOB"}  # alice operates and asks; bob approves
CONSOLE_APPROVERS = ["U0BOB"]


def data_dir() -> Path:
    return Path(os.environ.get("DBOPS_DEMO_DIR") or platformdirs.user_data_path("dbops")) / "demo"


def demo_settings(*, console: bool = False) -> Settings:
    """Start the embedded server (first run: initdb, a second or two) and describe the demo."""
    root = data_dir()
    base = embedded.start(root / "pgdata")
    control_url = embedded.ensure_database(base, "dbops_control")
    environment = {"migrations_dir": str(DEMO_MIGRATIONS), "lock_wait_seconds": 5}
    if console:
        snapshots = root / "console-snapshots"
        shutil.rmtree(snapshots, ignore_errors=True)
        environment |= {"database_url": embedded.recreate_database(base, "console_demo"),
                        "snapshot_dir": str(snapshots), "channels": [CONSOLE_CHANNEL],
                        "approvers": CONSOLE_APPROVERS}
    else:
        environment |= {"database_url": embedded.ensure_database(base, "demo"), "snapshot_dir": str(root / "snapshots"),
                        "require_approval": []}
    document = {"control": {"database_url": control_url}, "environments": {"demo": environment}}
    return parse_settings(document, source="(built-in demo)", base_dir=root, environ={})
