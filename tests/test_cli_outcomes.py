"""The command line a newcomer expects: help for every command, the version, and with
``--format json`` one JSON object on stdout for every outcome, with the README's exit codes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import psycopg
import pytest

from bot.cli import help as text_help
from bot.cli.main import main
from bot.cli.shell import shell
from commands import grammar, usage

ROOT = Path(__file__).resolve().parents[1]
FILES = {"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;",
         "2_bad.up.sql": "INSERT INTO users VALUES ('x');"}


def dbops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def config(make_bed, tmp_path: Path):
    bed = make_bed(FILES)
    path = tmp_path / "dbops.toml"
    path.write_text(f'''
[environments.test]
database_url = "{bed.url}"
migrations_dir = "migrations"
snapshot_dir = "snapshots"
lock_wait_seconds = 0.3
require_approval = []
''')
    return bed, str(path)


def one_object(capsys) -> dict:
    """stdout holds exactly one JSON object and nothing else."""
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n"), out
    return json.loads(out)


# --- help and version ----------------------------------------------------------------------------------

def test_help_lists_every_command_the_snapshot_commands_included() -> None:
    done = dbops("--help")
    assert done.returncode == 0 and done.stderr == ""
    for line in grammar.all_usage():
        assert shell(line) in done.stdout or line == "dbops help", line  # that one is this help itself
    for line in ("dbops serve [--http]", "dbops console [--user NAME]", "dbops --version", "Exit codes: 0 done"):
        assert line in done.stdout


@pytest.mark.parametrize("topic", sorted(text_help.COMMANDS))
def test_every_command_prints_its_usage_options_and_an_example(topic: str, capsys) -> None:
    assert main([*topic.split(), "--help"]) == 0
    out = capsys.readouterr().out
    first = shell(text_help.COMMANDS[topic].usage[0]) if text_help.COMMANDS[topic].grammar else f"dbops {topic}"
    assert out.startswith(f"usage: {first}")
    assert "\narguments and options:\n" in out and "--config PATH" in out
    assert out.split("\nexample:\n  ")[1].startswith(f"dbops {topic}")


@pytest.mark.parametrize("topic", sorted(t for t, h in text_help.COMMANDS.items() if h.grammar))
def test_every_help_example_is_a_command_the_grammar_reads(topic: str) -> None:
    words = shlex.split(text_help.COMMANDS[topic].example)[1:]
    for option in ("--format", "--config"):  # the command line's own options, not the grammar's
        if option in words:
            del words[words.index(option):words.index(option) + 2]
    assert words[:len(topic.split())] == topic.split() and type(grammar.parse(words)) in grammar.COMMANDS


def test_every_command_of_the_grammar_has_its_help() -> None:
    typed = {shell(line) for h in text_help.COMMANDS.values() if h.grammar for line in h.usage}
    missing = [line for line in grammar.all_usage() if shell(line) not in typed and line != "dbops help"]
    assert missing == []


def test_a_group_or_help_word_leads_to_the_same_help(capsys) -> None:
    assert main(["migrate", "--help"]) == 0
    group = capsys.readouterr().out
    assert group.startswith("usage: dbops migrate status|validate|plan|drift|up|down|goto|force|baseline|dry-run|unblock …")
    assert "dbops migrate dry-run [N] [ENV]" in group and "dbops snapshot" not in group
    assert main(["help", "rollback"]) == 0 and main(["rollback", "--help"]) == 0
    first, second = capsys.readouterr().out.split("usage: ")[1:]
    assert first == second and first.startswith("dbops rollback [ENV] [--steps N")
    assert main(["dbops", "lock", "status", "-h"]) == 0
    assert capsys.readouterr().out.startswith("usage: dbops lock status [ENV]")


def test_version_prints_the_version_in_pyproject() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = dbops("--version")
    assert (done.returncode, done.stdout) == (0, f"dbops {version}\n")


def test_a_usage_error_points_to_that_commands_help(config, capsys) -> None:
    _, path = config
    assert main(["migrate", "down", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "Usage: `dbops migrate down N [ENV]` or `dbops migrate down --all [ENV]`" in err
    assert "Run `dbops migrate down --help` for its options and an example." in err


# --- --format json: one object on stdout for every outcome ------------------------------------------------

def test_json_success_is_the_result_with_its_exit_code(config, capsys) -> None:
    _, path = config
    assert main(["migrate", "status", "--format", "json", "--config", path]) == 0
    out = one_object(capsys)
    assert out["kind"] == "StatusResult" and out["outcome"] == "done" and out["exit_code"] == 0
    assert [m["version"] for m in out["pending"]] == [1, 2]


def test_json_usage_error_is_one_object_with_its_usage_and_help(config, capsys) -> None:
    bed, path = config
    assert main(["migrate", "down", "--format", "json", "--config", path]) == 2
    out = one_object(capsys)
    assert out == {"kind": "usage_error", "exit_code": 2, "message": out["message"], "details": {
        "error": "UsageError", "usage": ["dbops migrate down N [ENV]", "dbops migrate down --all [ENV]"],
        "help": "dbops migrate down --help"}}
    assert "explicit number of migrations" in out["message"] and bed.state() is None


@pytest.mark.parametrize(("argv", "help"), [(["--format", "json"], "dbops --help"),
                                            (["shrug", "--format", "json"], "dbops --help"),
                                            (["serve", "--bogus", "--format", "json"], "dbops serve --help"),
                                            (["console", "--bogus", "--format", "json"], "dbops console --help")])
def test_json_a_command_line_dbops_cannot_read_is_a_usage_error(argv, help, capsys) -> None:
    assert main(argv) == 2
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"], out["details"]["help"]) == ("usage_error", 2, help)


def test_json_configuration_problem_is_a_config_error(tmp_path, capsys) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[environments.prod]\ndatabase_url = "postgres://h/db"\nmigrations_dir = "m"\nsnapshot_dir = "s"\n'
                    'retention = 3\n')
    assert main(["migrate", "status", "--format", "json", "--config", str(path)]) == 2
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"], out["details"]["error"]) == ("config_error", 2, "ConfigError")
    assert "unknown key 'environments.prod.retention'" in out["message"]


def test_json_refusal_carries_the_refusal_in_its_details(config, capsys) -> None:
    bed, path = config
    from commands.pg.lock import golang_migrate_lock_key
    key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=bed.url)
    with psycopg.connect(bed.url, autocommit=True, application_name="deploy.sh migrate") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        assert main(["migrate", "up", "--format", "json", "--config", path]) == 3
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"]) == ("refused", 3)
    assert out["details"]["kind"] == "Refusal" and out["details"]["reason"] == "lock_held"
    assert "refused: the migration lock is held\nHeld by pid" in out["message"] and bed.state() is None


def test_json_awaiting_approval_carries_the_request(make_bed, control_url, tmp_path, capsys) -> None:
    bed = make_bed(FILES)
    path = tmp_path / "dbops.toml"
    path.write_text(f'[control]\ndatabase_url = "{control_url}"\n\n[environments.test]\ndatabase_url = "{bed.url}"\n'
                    'migrations_dir = "migrations"\nsnapshot_dir = "snapshots"\nrequire_approval = ["up"]\n'
                    'approvers = ["U0BOB"]\n')
    assert main(["migrate", "up", "1", "--format", "json", "--config", str(path)]) == 3
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"], out["details"]["kind"]) == ("awaiting_approval", 3, "ApprovalNeeded")
    request_id = out["details"]["request"]["id"]
    assert f"dbops dbops approve {request_id}" in out["message"] and bed.state() is None


def test_json_failed_migration_is_failed_with_the_result(config, capsys) -> None:
    bed, path = config
    assert main(["migrate", "up", "--format", "json", "--config", path]) == 1
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"], out["details"]["kind"]) == ("failed", 1, "MigrateResult")
    assert out["details"]["failure"]["error"]["sqlstate"] == "22P02" and "migration 2 failed" in out["message"]


def test_json_fault_masks_the_password(tmp_path, capsys) -> None:
    (tmp_path / "m").mkdir()
    path = tmp_path / "dbops.toml"
    path.write_text('[environments.prod]\ndatabase_url = "postgresql://deploy:hunter2-secret@127.0.0.1:1/togather"\n'
                    'migrations_dir = "m"\nsnapshot_dir = "s"\nrequire_approval = []\n')
    assert main(["migrate", "status", "--format", "json", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["kind"], out["exit_code"], out["details"]["error"]) == ("fault", 1, "DatabaseUnreachable")
    assert "postgresql://deploy:****@127.0.0.1:1/togather" in out["message"]
    assert "hunter2-secret" not in captured.out + captured.err


def test_json_a_bug_is_an_internal_error_object_and_exit_1(config, capsys, monkeypatch) -> None:
    _, path = config

    def broken(settings, **_):
        raise RuntimeError("a bug")

    monkeypatch.setattr("bot.cli.main.build_executor", broken)
    assert main(["migrate", "status", "--format", "json", "--config", path]) == 1
    out = one_object(capsys)
    assert (out["kind"], out["exit_code"], out["details"]) == ("internal_error", 1, {"error": "RuntimeError"})


def test_a_bug_says_so_as_slack_does_with_the_reference_its_log_line_carries(config, capsys, monkeypatch) -> None:
    _, path = config

    def broken(settings, **_):
        raise RuntimeError("a bug")

    monkeypatch.setattr("bot.cli.main.build_executor", broken)
    assert main(["migrate", "status", "--config", path]) == 1
    err = capsys.readouterr().err
    [logged] = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logged["event"] == "internal_error" and "RuntimeError: a bug" in logged["exception"]
    assert "`dbops migrate status` failed because of a bug in dbops, not because of anything you did" in err
    assert f"under reference `{logged['reference']}`" in err and "check `dbops migrate status`" in err


def test_a_reader_that_stops_reading_is_not_reported_as_a_bug() -> None:
    """`dbops snapshot list | head -1`: the pipe's reader is gone before dbops writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "bot.cli.main", "--help"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""
