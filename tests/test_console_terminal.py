"""``dbops console`` as a daily tool: where it sits with ``--config``, where its log lines go, and
line editing with a history at a real (pseudo-)terminal."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pwd
import select
import signal
import subprocess
import sys
from pathlib import Path

from bot.console.session import Console, console, script
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name
MIGRATIONS = {
    "1_create_users.up.sql": "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
    "1_create_users.down.sql": "DROP TABLE users;",
    "2_add_name.up.sql": "ALTER TABLE users ADD COLUMN name text;",
    "2_add_name.down.sql": "ALTER TABLE users DROP COLUMN name;",
}


def write_config(bed, tmp_path: Path) -> Path:
    """The bed's environment as a dbops.toml, with no ``channels``, as a command-line user writes it."""
    env = bed.settings.environments["test"]
    path = tmp_path / "dbops.toml"
    path.write_text(f"[environments.test]\ndatabase_url = {json.dumps(bed.url)}\n"
                    f"migrations_dir = {json.dumps(str(bed.migrations))}\n"
                    f"snapshot_dir = {json.dumps(str(env.snapshot_dir))}\nlock_wait_seconds = 2\n"
                    "require_approval = []\n")
    return path


def console_env(state: Path) -> dict[str, str]:
    """The console's environment: its state directory (log, history) under the test's own."""
    environ = {k: v for k, v in os.environ.items() if k != "DBOPS_LOG_LEVEL"}
    return {**environ, "XDG_STATE_HOME": str(state), "TERM": "xterm"}


# --- where the console sits ----------------------------------------------------------------------------

def test_with_a_config_that_sets_no_channels_commands_work_and_the_console_says_where_it_is(make_bed):
    bed = make_bed(MIGRATIONS)
    settings = dataclasses.replace(bed.settings, cli_users={ACCOUNT: "U0ALICE"})
    out = io.StringIO()

    code = console(settings, user=None, stdin=io.StringIO("/migrate up\n/migrate status\n"), out=out)

    assert code == 0, out.getvalue()
    assert out.getvalue().splitlines()[0] == (f"dbops console: you are @{ACCOUNT} (U0ALICE) in #console (C0CONSOLE), "
                                              "environments: test. Type :help.")
    assert "not accepted in any channel" not in out.getvalue()
    assert "test: version 2 (clean)" in out.getvalue()
    assert bed.state() == (2, False)
    assert settings.environments["test"].channels == ()  # only the console's copy accepts its channel


def test_the_console_starts_in_the_first_configured_channel_and_channel_moves_to_another_environment(make_bed):
    bed = make_bed(MIGRATIONS, channels=["C0INCIDENT"])
    staging = dataclasses.replace(bed.settings.environments["test"], name="staging", channels=())
    settings = dataclasses.replace(bed.settings, environments={**bed.settings.environments, "staging": staging})
    out = io.StringIO()

    code = console(settings, user=None, out=out, stdin=io.StringIO(
        "/migrate status staging\n:channel staging\n/migrate status staging\n:channel\n:channel nowhere\n"))

    shown = out.getvalue()
    assert shown.splitlines()[0].startswith(f"dbops console: you are @{ACCOUNT} (os:{ACCOUNT}) in #test (C0INCIDENT), "
                                            "environments: test.")
    refused, _, moved = shown.partition(f"> [{ACCOUNT}] :channel staging")
    assert "`/migrate status` for staging is only accepted in #console" in refused
    assert "(now in #console (C0CONSOLE), environments: staging)" in moved
    assert "staging: no version (nothing applied)" in moved
    assert "  #test (C0INCIDENT), environments: test\n→ #console (C0CONSOLE), environments: staging" in moved
    assert "console: no channel 'nowhere' here. Channels: #test, #console." in moved
    assert code == 1  # the unknown channel


def test_at_a_terminal_answering_no_to_slacks_dialog_leaves_the_button_unpressed(make_bed, control_url):
    bed = make_bed(MIGRATIONS, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                   require_approval=["down"])
    bed.run("migrate up")
    out, asked = io.StringIO(), []
    with Console(bed.settings, users={"alice": "U0ALICE", "bob": "U0BOB"}, user="alice", channel="C0INCIDENT",
                 out=out, can_switch_user=True) as running:
        running.confirm = lambda prompt: asked.append(prompt) and False  # what a person typing "n" answers
        code = script(running, iter(["/migrate down 1\n", ":as bob\n", "1\n"]))

    assert asked == ["  Approve or Not yet? [y = Approve] "]
    assert "⚠️ Approve down on test?" in out.getvalue() and "(not pressed)" in out.getvalue()
    assert "pressed Approve" not in out.getvalue()
    assert code == 0 and bed.state() == (2, False)


# --- where the log lines go ----------------------------------------------------------------------------

def run_console(config: Path, state: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli.main", "console", "--config", str(config), *args],
                          input=script, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=console_env(state), check=False)


def test_a_warning_the_bot_logs_goes_to_the_log_file_and_not_into_the_conversation(make_bed, tmp_path):
    bed = make_bed({**MIGRATIONS, "3_broken.up.sql": "ALTER TABLE nowhere ADD COLUMN x int;",
                    "3_broken.down.sql": ""})
    config, state = write_config(bed, tmp_path), tmp_path / "state"
    log = state / "dbops" / "console.log"

    done = run_console(config, state, ":expect failed\n/migrate up\n")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].endswith(f"Log lines go to {log} (--verbose shows them here). Type :help.")
    assert "failed" in done.stdout and "3_broken" in done.stdout  # the conversation says what happened
    assert "migration.failed" not in done.stdout + done.stderr  # and no log line interrupts it
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["level"], e["version"]) for e in entries if e["event"] == "migration.failed"] == [("warning", 3)]

    verbose = run_console(config, state, ":expect failed\n/migrate up\n", "--verbose")

    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "migration.failed" in verbose.stderr and "Log lines go to" not in verbose.stdout
    assert [json.loads(line) for line in log.read_text().splitlines()] == entries  # nothing more in the file


# --- line editing at a terminal ------------------------------------------------------------------------

class Terminal:
    """``dbops console`` on a pseudo-terminal: keys in, the screen's bytes out."""

    def __init__(self, config: Path, state: Path) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "console", "--config", str(config)],
                                        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=console_env(state),
                                        start_new_session=True)
        os.close(slave)
        self.screen = ""

    def _read(self) -> str:
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the console exited and closed its end
                break
            if not chunk:
                break
            self.screen += chunk.decode("utf-8", "replace")
        return self.screen

    def wait_for(self, text: str, count: int = 1) -> None:
        wait_for(lambda: self._read().count(text) >= count, timeout=60, what=f"{text!r} ×{count} on:\n{self.screen}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def quit(self) -> int:
        self.type(":quit\r")
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            os.close(self.master)


UP = "\x1b[A"


def test_at_a_terminal_the_up_arrow_recalls_the_last_command_and_the_history_outlives_the_session(
        make_bed, tmp_path):
    bed = make_bed(MIGRATIONS)
    bed.run("migrate up")
    config, state = write_config(bed, tmp_path), tmp_path / "state"
    prompt = f"[{ACCOUNT}] #console> "

    first = Terminal(config, state)
    first.wait_for(prompt)
    first.type("/migrate status\r")
    first.wait_for("test: version 2 (clean)")
    first.wait_for(prompt, 2)
    first.type(UP + "\r")  # the line comes back as typed, and runs again
    first.wait_for("test: version 2 (clean)", 2)
    assert "Not a command" not in first.screen
    assert first.quit() == 0

    history = state / "dbops" / "console_history"
    assert history.read_text().splitlines() == ["/migrate status", ":quit"]  # a repeat is kept once
    assert history.stat().st_mode & 0o777 == 0o600

    second = Terminal(config, state)
    second.wait_for(prompt)
    second.type(UP + UP + "\r")  # :quit was last; before it, the status
    second.wait_for("test: version 2 (clean)")
    assert "Not a command" not in second.screen
    assert second.quit() == 0
