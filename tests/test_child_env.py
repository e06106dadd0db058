"""What dbops' child processes see of its environment: an allow-list and the one URL they need.

PostgreSQL's real tools run behind a pg_bin_dir of wrapper scripts that write their whole
environment to a file and then exec the real program, so every pg_dump, pg_restore and psql
that a create, verify and restore start is caught, along with the ``--help``/``--version``
probes; squawk is wrapped the same way.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from commands import grammar
from commands.config import parse_settings
from commands.executor import Actor, Executor
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.tools import bundled_bin_dir
from commands.results import Outcome
from commands.snapshot.results import RestoreResult
from commands.pg.squawk import SquawkLinter, find_squawk

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-childenvbottoken",
    "SLACK_SIGNING_SECRET": "child-env-signing-secret",
    "SLACK_APP_TOKEN": "xapp-1-child-env-app-token",
    "OTHER_DATABASE_URL": "postgresql://other:other-env-password@other.internal:5432/otherdb",
    "UNRELATED_VARIABLE": "nobody-needs-this",
    "PGPASSWORD": "a-stray-pgpassword-of-the-bot",
    "PGHOST": "stray.internal",
    "AWS_ACCESS_KEY_ID": "AKIACHILDENVTESTKEY01",    # the snapshot bucket's credentials: dbops' own,
    "AWS_SECRET_ACCESS_KEY": "child-env-aws-secret-key",  # never pg_dump's, pg_restore's or psql's
}
ALLOWED = {"PATH", "HOME", "TZ", "LANG"}


def wrap(program: Path, into: Path, captured: Path) -> Path:
    """A script named like ``program`` that writes its environment under ``captured``, then
    runs the real ``program`` with the same arguments and environment."""
    script = into / program.name
    # Python, not sh: a shell would add PWD to what it records.
    script.write_text(f"#!{sys.executable} -I\n"
                      "import os, sys\n"
                      f"with open({str(captured)!r} + '/{program.name}.' + str(os.getpid()), 'wb') as out:\n"
                      "    out.write(b''.join(k.encode() + b'=' + v.encode() + b'\\0' for k, v in os.environ.items()))\n"
                      f"os.execv({str(program)!r}, [{str(program)!r}, *sys.argv[1:]])\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def environments(captured: Path) -> dict[str, list[dict[str, str]]]:
    """Each wrapped program's environments, one per run."""
    seen: dict[str, list[dict[str, str]]] = {}
    for path in sorted(captured.iterdir()):
        pairs = [item.split("=", 1) for item in path.read_bytes().decode().split("\0") if item]
        seen.setdefault(path.name.split(".")[0], []).append(dict(pairs))
    return seen


def assert_allow_listed(env: dict[str, str], *, pg: set[str]) -> None:
    unexpected = {k for k in env if k not in ALLOWED and not k.startswith("LC_") and k not in pg}
    assert not unexpected, unexpected
    for value in env.values():
        for name, secret in SECRETS.items():
            assert secret not in value, name


@pytest.fixture
def secret_environ(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("LC_MESSAGES", "C")


def test_postgresql_tools_get_the_allow_list_and_only_their_own_url(secret_environ, database_url, control_url,
                                                                     tmp_path, monkeypatch):
    captured, bin_dir = tmp_path / "captured", tmp_path / "bin"
    captured.mkdir()
    bin_dir.mkdir()
    for program in ("pg_dump", "pg_restore", "psql"):
        wrap(bundled_bin_dir() / program, bin_dir, captured)
    # The control database and the managed one, reached with passwords (trust ignores them).
    monkeypatch.setenv("DBOPS_CONTROL_DATABASE_URL", control_url.replace("postgres:@", "postgres:control-pw@", 1))
    monkeypatch.setenv("TEST_DATABASE_URL", database_url.replace("postgres:@", "postgres:test-env-pw@", 1))
    common = {"migrations_dir": str(tmp_path), "require_approval": [], "pg_bin_dir": str(bin_dir)}
    settings = parse_settings({
        "control": {"database_url": "${DBOPS_CONTROL_DATABASE_URL}"},
        "environments": {
            "test": {"database_url": "${TEST_DATABASE_URL}", "snapshot_dir": str(tmp_path / "snapshots"), **common},
            "other": {"database_url": "${OTHER_DATABASE_URL}", "snapshot_dir": str(tmp_path / "other"), **common},
        }}, source="test", base_dir=tmp_path, environ=dict(os.environ))
    executor = Executor(settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter())

    def run(text: str):
        return executor.run(grammar.parse(text), Actor(user="alice"))

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)")
    created = run("snapshot create test").snapshot.name
    assert run(f"snapshot verify {created} test").outcome is Outcome.DONE
    assert isinstance(run(f"snapshot restore {created} test"), RestoreResult)
    legacy = tmp_path / "snapshots" / "togather_test_20260128_143022_hand-made.sql.gz"
    legacy.write_bytes(gzip.compress(b"CREATE TABLE from_legacy (id int);\n"))
    assert isinstance(run("snapshot restore togather_test_20260128_143022_hand-made test"), RestoreResult)

    seen = environments(captured)
    assert set(seen) == {"pg_dump", "pg_restore", "psql"}  # the probes and the real runs
    control_pw, test_pw = "control-pw", "test-env-pw"
    for program, runs in seen.items():
        for env in runs:
            assert_allow_listed(env, pg={k for k in env if k.startswith("PG")})
            assert env["TZ"] == "UTC" and env["LC_MESSAGES"] == "C" and env["PATH"] == os.environ["PATH"]
            assert control_pw not in "".join(env.values()), program
            if "PGDATABASE" in env:  # a run that connects: the test environment's URL, all of it and no more
                assert env["PGPASSWORD"] == test_pw and env["PGUSER"] == "postgres"
                assert env["PGHOST"] == conninfo_to_dict(database_url)["host"]
            else:  # --help, --version, pg_restore reading an archive: no connection, no PG* at all
                assert not any(k.startswith("PG") for k in env), (program, env)
    connecting = [env for runs in seen.values() for env in runs if "PGDATABASE" in env]
    assert {"pg_dump", "psql"} <= {p for p, runs in seen.items() for env in runs if "PGDATABASE" in env}
    assert len(connecting) >= 3  # the create's and the safety snapshot's pg_dump, the restores' psql


def test_squawk_gets_the_allow_list_only(secret_environ, tmp_path):
    real = find_squawk()
    assert real is not None, "squawk-cli is a dependency"
    captured, bin_dir = tmp_path / "captured", tmp_path / "bin"
    captured.mkdir()
    bin_dir.mkdir()
    migration = tmp_path / "1_add.up.sql"
    migration.write_text("ALTER TABLE accounts ADD COLUMN n int NOT NULL;\n")
    findings = SquawkLinter(wrap(real, bin_dir, captured)).lint([(migration, True)])
    assert any(f.source == "squawk" and f.rule != "squawk-not-run" for f in findings[0]), findings
    (env,) = environments(captured)["squawk"]
    assert_allow_listed(env, pg=set())
