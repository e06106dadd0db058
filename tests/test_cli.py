"""The dbops command line: what a shell user sees, and the exit codes scripts rely on."""

from __future__ import annotations

import io
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.cli.main import main
from bot.console.session import Console, script
from commands.config import load_settings

FILES = {"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;",
         "2_bad.up.sql": "INSERT INTO users VALUES ('x');"}


@pytest.fixture
def config(make_bed, tmp_path: Path):
    bed = make_bed(FILES)
    path = tmp_path / "dbops.toml"
    path.write_text('''
[environments.test]
database_url = "${TEST_DATABASE_URL}"
migrations_dir = "migrations"
snapshot_dir = "snapshots"
lock_wait_seconds = 0.3
require_approval = []
''')
    os.environ["TEST_DATABASE_URL"] = bed.url
    yield bed, str(path)
    os.environ.pop("TEST_DATABASE_URL", None)


def test_status_prints_the_version_and_exits_0(config, capsys):
    bed, path = config
    assert main(["migrate", "status", "--config", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith("test: no version (nothing applied)\n") and "version no version" not in out
    assert "in the order `up` applies them:\n`1_users`\n" in out


def test_environment_given_positionally_or_with_env_is_the_same(config, capsys):
    bed, path = config
    assert main(["migrate", "up", "1", "test", "--config", path]) == 0
    assert main(["migrate", "down", "1", "--env", "test", "--config", path]) == 0
    assert bed.state() is None and "users" not in bed.tables()


def test_a_failed_migration_exits_1_and_names_file_and_line(config, capsys):
    bed, path = config
    assert main(["migrate", "up", "--config", path]) == 1
    out = capsys.readouterr().out
    assert "migration 2 failed" in out and "2_bad.up.sql, line 1" in out and "22P02" in out
    assert "the database is at version 1 (clean)" in out and "clean at 1 (clean)" not in out


def test_a_held_lock_exits_3_naming_the_holder(config, capsys):
    bed, path = config
    with psycopg.connect(bed.url, autocommit=True, application_name="deploy.sh migrate") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_key(bed.url),))
        pid = other.info.backend_pid
        assert main(["migrate", "up", "1", "--config", path]) == 3
    out = capsys.readouterr().out
    assert f"pid {pid} (deploy.sh migrate" in out
    assert bed.state() is None


def _key(url: str) -> int:
    from commands.pg.lock import golang_migrate_lock_key
    return golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=url)


def test_json_output_carries_the_outcome_and_state(config, capsys):
    bed, path = config
    assert main(["migrate", "up", "1", "--format", "json", "--config", path]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "MigrateResult" and result["outcome"] == "done"
    assert result["after"] == {"kind": "State", "version": 1, "dirty": False}


@pytest.mark.parametrize("argv,message", [
    (["migrate", "down"], "explicit number"),
    (["migrate", "goto", "abc"], "'abc' is not a migration version"),
    (["migrate", "goto", "7"], "No migration file has version 7"),
    (["migrate", "status", "--env", "staging"], "Unknown environment 'staging'; this configuration has: test"),
    (["migrate", "sideways"], "Unknown migrate command"),
    (["migrate", "status", "--format", "yaml"], "--format must be text or json"),
])
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(config, capsys, argv, message):
    bed, path = config
    assert main([*argv, "--config", path]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert bed.state() is None


def test_usage_lines_are_written_for_the_shell(config, capsys):
    _, path = config
    main(["migrate", "down", "--config", path])
    assert "Usage: `dbops migrate down N [ENV]`" in capsys.readouterr().err


def test_a_command_that_needs_approval_without_a_control_database_is_refused_with_exit_3(config, capsys):
    bed, path = config
    assert main(["migrate", "up", "1", "--config", path]) == 0
    Path(path).write_text(Path(path).read_text().replace("require_approval = []", 'require_approval = ["down"]\napprovers = ["U0BOB"]'))
    capsys.readouterr()
    assert main(["migrate", "down", "1", "--config", path]) == 3
    out = capsys.readouterr().out
    assert "test: `dbops migrate down` refused: it needs a second person's approval, and no control database" in out
    assert "Set `database_url` under `[control]`" in out
    assert bed.state() == (1, False) and "users" in bed.tables()


def test_a_message_that_points_to_a_command_names_it_as_the_shell_types_it(config, capsys):
    _, path = config
    assert main(["snapshot", "restore", "nosuch", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "No snapshot named 'nosuch'. `dbops snapshot list` shows the available ones." in err
    assert "/snapshot" not in err


def test_a_bad_config_exits_2_naming_key_and_file(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[environments.prod]\ndatabase_url = "postgres://h/db"\nmigrations_dir = "m"\nsnapshot_dir = "s"\n'
                    'retention = 3\n')
    assert main(["migrate", "status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'environments.prod.retention'" in err and str(path) in err


def test_a_migrations_dir_that_is_not_there_is_a_configuration_problem_exit_2(tmp_path, capsys):
    path = tmp_path / "dbops.toml"
    path.write_text('[environments.prod]\ndatabase_url = "postgresql://deploy@127.0.0.1:1/togather"\n'
                    'migrations_dir = "no-such-dir"\nsnapshot_dir = "s"\nrequire_approval = []\n')
    assert main(["migrate", "status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"Migrations directory {tmp_path / 'no-such-dir'} does not exist (migrations_dir in the dbops configuration)" in err


def test_a_connection_failure_exits_1_and_never_shows_the_password(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    path = tmp_path / "dbops.toml"
    path.write_text('[environments.prod]\ndatabase_url = "postgresql://deploy:hunter2-secret@127.0.0.1:1/togather"\n'
                    'migrations_dir = "m"\nsnapshot_dir = "s"\nrequire_approval = []\n')
    assert main(["migrate", "status", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    assert "environment prod: could not connect to postgresql://deploy:****@127.0.0.1:1/togather" in captured.err
    assert "hunter2-secret" not in captured.out + captured.err


def test_readme_main_command_shows_the_demo_status(tmp_path):
    """The README's first command ends in `dbops migrate status` on the built-in demo."""
    env = {**os.environ, "DBOPS_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("DBOPS_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "migrate", "status"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("demo: no version (nothing applied)\n")
    assert "in the order `up` applies them:\n`20260128001_initial_schema`\n" in done.stdout


def test_a_dirty_database_is_refused_with_the_guides_recovery_options(config, capsys):
    bed, path = config
    main(["migrate", "up", "1", "--config", path])
    bed.execute("UPDATE schema_migrations SET dirty = true")
    capsys.readouterr()
    assert main(["migrate", "up", "--config", path]) == 3
    out = capsys.readouterr().out
    assert "refused: the database is dirty at version 1\nNothing was changed." in out
    assert "Restore the snapshot taken before the failed migration (recommended)" in out
    assert "`force 1` and run `up` again" in out and "`force 1`, then `down 1`" in out


def test_logs_are_json_and_mask_secrets(tmp_path, capsys):
    import io
    import structlog
    from bot.logs import configure_logging
    from commands.redact import redact

    redact.register("s3cr3t-signing")
    stream = io.StringIO()
    configure_logging(level="info", stream=stream)
    structlog.get_logger("t").info("connect", url="postgresql://app:pa55word@db/x", note="sig s3cr3t-signing",
                                   token="xoxb-1234567890-abcdef")
    line = json.loads(stream.getvalue())
    assert line["event"] == "connect" and line["level"] == "info"
    assert line["url"] == "postgresql://app:****@db/x"
    assert "s3cr3t-signing" not in stream.getvalue() and "xoxb-1234567890" not in stream.getvalue()


def test_a_request_from_the_shell_prints_its_id_exits_3_and_is_approved_by_someone_else(
        make_bed, control_url, tmp_path, capsys):
    bed = make_bed(FILES)
    account = pwd.getpwuid(os.geteuid()).pw_name

    def config(name: str, slack_id: str) -> str:
        """The configuration as the shell of ``account`` mapped to ``slack_id`` reads it."""
        path = tmp_path / f"{name}.toml"
        path.write_text(f'''
[control]
database_url = "{control_url}"

[cli]
users = {{ "{account}" = "{slack_id}" }}

[environments.test]
database_url = "{bed.url}"
migrations_dir = "migrations"
snapshot_dir = "snapshots"
approvers = ["U0BOB"]
''')
        return str(path)

    alice, bob = config("alice", "U0ALICE"), config("bob", "U0BOB")
    assert main(["migrate", "up", "1", "--config", alice]) == 0
    capsys.readouterr()

    assert main(["migrate", "down", "1", "--config", alice]) == 3
    printed = capsys.readouterr().out
    request_id = re.search(r"Request: `(r[0-9a-f]{10})`", printed)[1]
    assert f"dbops dbops approve {request_id}" in printed and bed.state() == (1, False)

    assert main(["dbops", "approve", request_id, "--config", alice]) == 3  # alice asked: not hers to approve
    assert "someone else" in capsys.readouterr().out.lower()
    assert main(["dbops", "approve", request_id, "--config", bob]) == 0
    assert "users" not in bed.tables()


def test_rollback_from_the_shell_plans_and_runs(config, capsys):
    bed, path = config
    assert main(["migrate", "up", "1", "--config", path]) == 0
    capsys.readouterr()

    assert main(["rollback", "--config", path]) == 0
    plan = capsys.readouterr().out
    assert "dbops rollback --steps 1 test --reason" in plan

    assert main(["rollback", "--steps", "1", "--reason", "bad release", "--config", path]) == 0
    assert "bad release" in capsys.readouterr().out
    assert "users" not in bed.tables()


def test_the_shell_names_a_migration_as_the_console_does(config, capsys):
    """One wording: the lines of a rollback's plan and result that name the migration read the
    same in a shell as in the console (the shell once said ``1_users``, the console ``1_users.up.sql``)."""
    bed, path = config
    with open(path, "a") as toml:
        toml.write('channels = ["C0TEST"]\n')
    console_out = io.StringIO()
    for surface in ("console", "shell"):
        assert main(["migrate", "up", "1", "--config", path]) == 0
        capsys.readouterr()
        if surface == "console":
            with Console(load_settings(path), users={"alice": "U0ALICE"}, user="alice", channel="C0TEST",
                         out=console_out) as console:
                assert script(console, iter(["/rollback\n", '/rollback --steps 1 --reason "bad release"\n'])) == 0
        else:
            assert main(["rollback", "--config", path]) == 0
            assert main(["rollback", "--steps", "1", "--reason", "bad release", "--config", path]) == 0
        assert "users" not in bed.tables()
    shell, shown = capsys.readouterr().out, console_out.getvalue()

    naming = [line for line in shell.splitlines() if "1_users" in line and "dbops" not in line]
    assert "Undoing: `1_users`" in naming and any(line.startswith("down `1_users.down.sql` · ") for line in naming)
    assert [line for line in naming if line.split(" · ")[0] not in shown] == [], shown


def test_the_snapshot_list_shows_a_page_and_its_json_is_the_whole_inventory(config, capsys, tmp_path):
    from datetime import datetime, timedelta, timezone
    from tests.test_schedule import write_snapshot
    _, path = config
    now = datetime.now(timezone.utc).replace(microsecond=0)
    names = [write_snapshot(tmp_path / "snapshots", now - timedelta(hours=i), reason=f"n{i}") for i in range(35)]
    assert main(["snapshot", "list", "--config", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith("test: newest 30 of 35 snapshots\n") and names[29] in out and names[30] not in out
    assert f"Older ones: `dbops snapshot list test --before {names[29]}`." in out
    assert main(["snapshot", "list", "--before", names[29], "--config", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith("test: 5 older snapshots\n") and all(name in out for name in names[30:])
    assert main(["snapshot", "list", "--format", "json", "--config", path]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in result["snapshots"]] == names and result["complete"] and result["counted"] == 35
