"""A command line that starts fast: a status loads only what a status needs. How long it takes
is measured in bench/cli_startup.py, never here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What a status never needs: Slack, the scheduler, the bot's HTTP server and its metrics
# exporter, rich (structlog's pretty tracebacks), the lint rules and PostgreSQL's parser, the
# snapshot compressor, the bot's connection pool, and the HTTP client of the application's health check.
NOT_FOR_A_STATUS = ("slack_bolt", "slack_sdk", "apscheduler", "waitress", "prometheus_client", "rich",
                    "commands.lint.lint", "pglast", "commands.sql.sqlparse", "zstandard", "psycopg_pool",
                    "http.client")
# Nor what other capabilities need, which the executor, the collaborators and the renderer
# load when a command uses it: the approval machinery and the results and replies of the
# other commands, the SQL reader and the migration runner, the doctor's facts, the restorer,
# and the shell's help.
OTHER_CAPABILITIES = ("commands.approval.approvals", "commands.approval.results", "commands.kinds",
                      "commands.lint.findings", "commands.lint.results", "commands.rollback.results",
                      "commands.watch.results", "commands.doctor.results", "commands.lock.results",
                      "commands.sql.sqlfile", "commands.pg.runner", "commands.pg.integrity", "commands.probes",
                      "commands.pg.restore", "commands.pg.psql_script", "bot.slack.blocks.approvals",
                      "bot.slack.blocks.snapshots", "bot.slack.blocks.rollback", "bot.slack.blocks.locks",
                      "bot.slack.blocks.doctor", "bot.slack.blocks.plan", "bot.cli.help",
                      "commands.schema.results", "commands.schema.model", "commands.pg.scratch",
                      "commands.pg.catalog", "bot.slack.blocks.drift", "commands.pg.changed_rows",
                      "commands.pg.restore_names", "commands.preserve.results", "commands.app.results",
                      "commands.sessions")
RUN_STATUS = """
import json, sys
from bot.cli.main import main
code = main(["migrate", "status", "--config", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_a_status_from_the_shell_does_not_load_what_only_other_commands_need(make_bed, control_url,
                                                                              tmp_path: Path) -> None:
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;"})
    config = tmp_path / "dbops.toml"
    config.write_text(f'[control]\ndatabase_url = "{control_url}"\n\n[environments.test]\ndatabase_url = "{bed.url}"\n'
                      'migrations_dir = "migrations"\nsnapshot_dir = "snapshots"\napprovers = ["U0BOB"]\n')
    for _ in range(2):  # the first brings the control database's schema up to date, with the parser
        done = subprocess.run([sys.executable, "-c", RUN_STATUS, str(config)], capture_output=True, text=True,
                              timeout=120, check=False)
    *printed, last = done.stdout.splitlines()
    seen = json.loads(last)
    assert seen["code"] == 0 and "test: no version (nothing applied)" in printed, done.stderr
    loaded = [m for m in NOT_FOR_A_STATUS + OTHER_CAPABILITIES if m in seen["modules"]]
    assert loaded == []


RUN_AS_THE_SHELL = """
import gc, json, sys
from bot.cli.main import main
caller, sys.argv = sys.argv[1], ["dbops", *sys.argv[2:]]
code = main() if caller == "shell" else main(sys.argv[1:])
print(json.dumps({"code": code, "collecting": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_the_garbage_collector_is_left_on_after_a_command_and_untouched_for_a_program_that_calls_main(
        make_bed, tmp_path: Path) -> None:
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);"})
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "migrations"\n'
                      'snapshot_dir = "snapshots"\napprovers = ["U0BOB"]\n')
    seen = {}
    for caller in ("shell", "program"):
        done = subprocess.run([sys.executable, "-c", RUN_AS_THE_SHELL, caller, "migrate", "status", "--config",
                               str(config)], capture_output=True, text=True, timeout=120, check=False)
        *printed, last = done.stdout.splitlines()
        seen[caller] = json.loads(last)
        assert "test: no version (nothing applied)" in printed, done.stderr
    # A process of its own freezes what it loaded (the collector no longer walks it) and collects again.
    assert seen["shell"]["code"] == 0 and seen["shell"]["collecting"] and seen["shell"]["frozen"] > 0
    assert seen["program"] == {"code": 0, "collecting": True, "frozen": 0}


def test_rich_is_still_there_for_whoever_imports_it_after_the_logs() -> None:
    done = subprocess.run([sys.executable, "-c", "import bot.logs, sys; assert 'rich' not in sys.modules; "
                           "import rich.console; print(rich.console.Console)"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and "rich.console.Console" in done.stdout, done.stderr
