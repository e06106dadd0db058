"""The environment a child process of dbops inherits: an allow-list, never the whole of ours.

dbops' own environment holds its secrets: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, every
managed environment's database URL, the control database's. A child (pg_dump, pg_restore,
psql, squawk) gets only what any program needs to run as this user: the search path, the
home directory (libpq looks there for ~/.pgpass, ~/.pg_service.conf and
~/.postgresql/root.crt), the time zone and the locale. Anything more a child needs is handed
to it explicitly: PostgreSQL's tools get the PG* variables of the one URL they connect to
(``commands.pg.tools.child_env``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

INHERITED = frozenset({"PATH", "HOME", "TZ", "LANG"})
INHERITED_PREFIX = "LC_"  # LC_ALL, LC_CTYPE, LC_MESSAGES…


def base_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default: this process's) that every child may see."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name in INHERITED or name.startswith(INHERITED_PREFIX)}
