"""Who a shell user is: the operating-system account running dbops, as ``[cli] users`` maps it,
whatever ``$USER`` and ``$LOGNAME`` say. Checked by what the request, the audit log and the
database show, on real PostgreSQL."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.cli.main import build_executor
from bot.cli.main import main
from commands import grammar
from commands.config import load_settings
from commands.executor import Actor
from commands.approval.results import ApprovalRefused
from commands.results import Reason

FILES = {"1_users.up.sql": "CREATE TABLE users (id int);", "1_users.down.sql": "DROP TABLE users;"}
ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name  # the account these tests run as (root on the test machine)


class Shell:
    """One managed database at version 1 and a control database; ``config`` writes the TOML a
    shell reads, with the ``[cli] users`` map under test."""

    def __init__(self, bed, control_url: str, tmp_path: Path) -> None:
        self.bed, self.control_url, self.tmp_path = bed, control_url, tmp_path

    def config(self, users: dict[str, str], *, approvers: tuple[str, ...] = ("U0BOB",),
               operators: tuple[str, ...] = ()) -> str:
        path = self.tmp_path / f"dbops-{len(list(self.tmp_path.glob('dbops-*.toml')))}.toml"
        table = ", ".join(f'"{account}" = "{uid}"' for account, uid in users.items())
        path.write_text(f'''
[control]
database_url = "{self.control_url}"

[cli]
users = {{ {table} }}

[environments.test]
database_url = "{self.bed.url}"
migrations_dir = "migrations"
snapshot_dir = "snapshots"
channels = ["C0INCIDENT"]
approvers = {list(approvers)!r}
operators = {list(operators)!r}
'''.replace("'", '"'))
        return str(path)

    def in_slack(self, config: str, text: str, user: str):
        """``text`` typed in the environment's channel by Slack user ``user`` (same databases)."""
        executor = build_executor(load_settings(config))
        return executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))

    def request(self, request_id: str) -> tuple[str, str, str | None]:
        with psycopg.connect(self.control_url) as conn:
            return conn.execute("SELECT requester, state, decided_by FROM dbops_approvals WHERE id = %s",
                                (request_id,)).fetchone()

    def audit(self, command: str) -> list[tuple[str, str, str]]:
        with psycopg.connect(self.control_url) as conn:
            return conn.execute("SELECT actor, surface, outcome FROM dbops_audit_log WHERE command = %s ORDER BY id",
                                (command,)).fetchall()


@pytest.fixture
def shell(make_bed, control_url, tmp_path):
    shell = Shell(make_bed(FILES), control_url, tmp_path)
    assert main(["migrate", "up", "--config", shell.config({})]) == 0
    assert shell.bed.state() == (1, False)
    return shell


def request_id_in(printed: str) -> str:
    return re.search(r"Request: `(r[0-9a-f]{10})`", printed)[1]


def test_user_and_logname_in_the_environment_do_not_change_who_the_shell_user_is(shell, capsys, monkeypatch):
    config = shell.config({ACCOUNT: "U0ALICE"})
    monkeypatch.setenv("USER", "U0BOB")
    monkeypatch.setenv("LOGNAME", "U0BOB")
    capsys.readouterr()

    assert main(["migrate", "down", "1", "--config", config]) == 3
    request_id = request_id_in(capsys.readouterr().out)
    # A real process with both variables set to the approver's id: still alice, so refused.
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "dbops", "approve", request_id, "--config", config],
                          env={**os.environ, "USER": "U0BOB", "LOGNAME": "U0BOB"}, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 3, done.stderr
    assert "so you cannot approve it: someone else among the approvers of test must" in done.stdout
    assert shell.request(request_id) == ("U0ALICE", "pending", None)
    assert shell.audit("migrate down") == [("U0ALICE", "cli", "awaiting_approval")]
    assert shell.audit("dbops approve") == [("U0ALICE", "cli", "refused")]
    assert shell.bed.state() == (1, False)


def test_an_unmapped_account_acts_as_os_name_may_request_and_can_never_approve(shell, capsys):
    # Even an approvers list naming the os: identity does not make an unmapped account an approver.
    config = shell.config({"someone-else": "U0BOB"}, approvers=("U0BOB", f"os:{ACCOUNT}"))
    asked = shell.in_slack(config, "migrate down 1", "U0ALICE").request.id
    capsys.readouterr()

    assert main(["dbops", "approve", asked, "--config", config]) == 3
    refused = capsys.readouterr().out
    assert main(["dbops", "deny", asked, "--reason", "not now", "--config", config]) == 3

    assert f"You are the operating-system account `{ACCOUNT}`, which `[cli] users` does not map" in refused
    assert f'add `"{ACCOUNT}" = "U…"`' in refused and "cannot approve or deny" in refused
    assert shell.request(asked) == ("U0ALICE", "pending", None)
    assert shell.audit("dbops approve") == [(f"os:{ACCOUNT}", "cli", "refused")]
    assert shell.bed.state() == (1, False)
    # It may still ask, as os:NAME, and withdraw what it asked for.
    capsys.readouterr()
    assert main(["migrate", "down", "1", "--config", config]) == 3
    own = request_id_in(capsys.readouterr().out)
    assert shell.request(own) == (f"os:{ACCOUNT}", "pending", None)
    assert main(["dbops", "cancel", own, "--config", config]) == 0
    assert shell.request(own)[1] == "cancelled"


def test_a_mapped_approver_approves_from_the_shell_as_their_slack_id(shell, capsys):
    config = shell.config({ACCOUNT: "U0BOB"})
    asked = shell.in_slack(config, "migrate down 1", "U0ALICE").request.id

    assert main(["dbops", "approve", asked, "--config", config]) == 0

    assert f"Approved by @{ACCOUNT} (U0BOB)" in capsys.readouterr().out
    assert shell.request(asked) == ("U0ALICE", "executed", "U0BOB")
    assert shell.audit("dbops approve") == [("U0BOB", "cli", "done")]
    assert shell.bed.state() is None and "users" not in shell.bed.tables()


def test_the_two_person_rule_holds_across_slack_and_the_shell(shell, capsys):
    config = shell.config({ACCOUNT: "U0ALICE"}, approvers=("U0ALICE", "U0BOB"))
    in_slack = shell.in_slack(config, "migrate down 1", "U0ALICE").request.id

    assert main(["dbops", "approve", in_slack, "--config", config]) == 3  # alice, in her shell
    assert main(["migrate", "down", "1", "--config", config]) == 3
    in_shell = request_id_in(capsys.readouterr().out)
    from_slack = shell.in_slack(config, f"dbops approve {in_shell}", "U0ALICE")  # alice, in Slack

    assert isinstance(from_slack, ApprovalRefused) and from_slack.reason is Reason.SELF_APPROVAL
    assert shell.request(in_slack) == ("U0ALICE", "pending", None)
    assert shell.request(in_shell) == ("U0ALICE", "pending", None)
    assert shell.bed.state() == (1, False)


def test_a_request_made_before_its_account_was_mapped_is_still_its_requesters_own(shell, capsys):
    unmapped = shell.config({})
    assert main(["migrate", "down", "1", "--config", unmapped]) == 3
    asked = request_id_in(capsys.readouterr().out)
    mapped = shell.config({ACCOUNT: "U0ALICE"}, approvers=("U0ALICE", "U0BOB"))

    refused = shell.in_slack(mapped, f"dbops approve {asked}", "U0ALICE")

    assert isinstance(refused, ApprovalRefused) and refused.reason is Reason.SELF_APPROVAL
    assert shell.request(asked) == (f"os:{ACCOUNT}", "pending", None)
    assert main(["dbops", "cancel", asked, "--config", mapped]) == 0  # and its requester may withdraw it


def test_operators_apply_to_a_shell_user_by_the_accounts_slack_id(shell, capsys):
    capsys.readouterr()
    assert main(["migrate", "down", "1", "--config", shell.config({ACCOUNT: "U0BOB"}, operators=("U0ALICE",))]) == 3
    assert "refused: only the operators may run state-changing commands\nOperators of test: @U0ALICE." \
        in capsys.readouterr().out
    assert main(["migrate", "down", "1", "--config", shell.config({}, operators=("U0ALICE",))]) == 3
    assert f'You are os:{ACCOUNT}: [cli] users in the configuration does not map the account {ACCOUNT}' \
        in capsys.readouterr().out
    assert shell.bed.state() == (1, False)

    assert main(["migrate", "status", "--config", shell.config({}, operators=("U0ALICE",))]) == 0  # reading is open
    assert main(["migrate", "down", "1", "--config", shell.config({ACCOUNT: "U0ALICE"}, operators=("U0ALICE",))]) == 3
    assert "a second person must approve it" in capsys.readouterr().out


def test_the_shell_user_is_the_effective_uid_account_not_the_environment():
    """A process whose effective uid is another account (nobody) is that account, whatever
    $USER and $LOGNAME say; mapped, it is the mapped id."""
    other = pwd.getpwnam("nobody")
    child = f"""
import os
from bot.cli.user import shell_actor
from commands.config import Settings
os.setegid({other.pw_gid}); os.seteuid({other.pw_uid})
for users in ({{}}, {{"nobody": "U0NOBODY", "{ACCOUNT}": "U0ROOT"}}):
    print(shell_actor(Settings(path=None, control_database_url=None, alerts_channel=None, cli_users=users)).user)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "USER": ACCOUNT, "LOGNAME": ACCOUNT})

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["os:nobody", "U0NOBODY"]
