"""The zero-setup demo: an embedded PostgreSQL and a ``demo`` environment with shipped migrations."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from commands.config import Settings, parse_settings
from commands.pg import embedded

DEMO_MIGRATIONS = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "migrations"


def data_dir() -> Path:
    return Path(os.environ.get("DBOPS_DEMO_DIR") or platformdirs.user_data_path("dbops")) / "demo"


def demo_settings() -> Settings:
    """Start the embedded server (first run: initdb, a second or two) and describe the demo."""
    root = data_dir()
    base = embedded.start(root / "pgdata")
    demo_url = embedded.ensure_database(base, "demo")
    control_url = embedded.ensure_database(base, "dbops_control")
    document = {
        "control": {"database_url": control_url},
        "environments": {
            "demo": {
                "database_url": demo_url,
                "migrations_dir": str(DEMO_MIGRATIONS),
                "snapshot_dir": str(root / "snapshots"),
                "lock_wait_seconds": 5,
            },
        },
    }
    return parse_settings(document, source="(built-in demo)", base_dir=root, environ={})
