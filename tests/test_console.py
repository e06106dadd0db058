"""``dbops console``: the real bot in a terminal, driven by a script, checked by what it prints."""

from __future__ import annotations

import dataclasses
import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bot.console.session import Console, console, script
from bot.terminal import Names, mrkdwn_text
from commands import grammar
from commands.errors import UsageError
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from tests.app_server import AppServer, Answer

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = {
    "1_create_users.up.sql": "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
    "1_create_users.down.sql": "DROP TABLE users;",
    "2_add_name.up.sql": "ALTER TABLE users ADD COLUMN name text;",
    "2_add_name.down.sql": "ALTER TABLE users DROP COLUMN name;",
}
USERS = {"alice": "U0ALICE", "bob": "U0BOB"}
ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name  # the account the tests run as


@pytest.fixture
def bed(make_bed, control_url):
    bed = make_bed(MIGRATIONS, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                   require_approval=["down"])
    bed.run("migrate up")
    return bed


def run_script(bed, text: str, user: str = "alice") -> tuple[int, str]:
    out = io.StringIO()
    with Console(bed.settings, users=USERS, user=user, channel="C0INCIDENT", out=out,
                 progress_interval=0.2, can_switch_user=True) as console:
        code = script(console, iter(text.splitlines(keepends=True)))
    return code, out.getvalue()


def test_status_reply_is_rendered_as_text_for_the_user_alone(bed):
    code, out = run_script(bed, "/migrate status\n")
    assert code == 0
    assert "> [alice] /migrate status" in out
    assert "only visible to @alice" in out
    assert "test: version 2 (clean)" in out  # mrkdwn emphasis gone
    assert "[1] Refresh" in out
    assert "{" not in out and "*" not in out  # no Block Kit JSON, no mrkdwn marks


def test_down_is_approved_by_a_second_user_pressing_the_number(bed):
    code, out = run_script(bed, "/migrate down 1\n:as bob\n1\n")
    assert code == 0, out
    card, _, after = out.partition("> [alice] :as bob")
    assert "@alice asks to run `/migrate down 1 test`" in card
    assert "[1] Approve  [2] Deny  [3] Cancel" in card
    assert ("  ⚠️ Approve down on test?\n  Reverts 1 migration on test, version 2 → 1. Data their down files drop "
            "(1 statement) is lost. It runs at once, as requested: /migrate down 1 test\n(@bob pressed Approve on m1)") in after  # Slack's dialog, then the press
    assert "was approved by @bob" in after
    assert bed.state() == (1, False)


def test_a_rollback_with_hooks_says_at_the_console_that_approving_pauses_and_resumes_the_application(
        make_bed, control_url):
    with AppServer() as app:
        app.answers = {"/pause": Answer(200, "paused"), "/resume": Answer(200, "resumed")}
        bed = make_bed(MIGRATIONS, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down"], app_pause_url=app.url("/pause"), app_resume_url=app.url("/resume"))
        bed.run("migrate up")
        code, out = run_script(bed, '/rollback --steps 1 --reason "name column broke"\n:as bob\n1\n')
        called = app.paths()

    assert code == 0, out
    card, _, after = out.partition("> [alice] :as bob")
    assert f"The application is paused first: once the lock is taken, dbops calls `POST {app.url('/pause')}`" in card
    assert ("  ⚠️ Approve down on test?\n  Reverts 1 migration on test, version 2 → 1. Data their down files drop "
            "(1 statement) is lost. dbops pauses the application first (its pause hook) and resumes it after. It runs "
            "at once, as requested: /rollback --steps 1 --reason 'name column broke' test") in after
    assert called == ["/pause", "/resume"] and bed.state() == (1, False)
    assert f"Application stopped: the pause hook `POST {app.url('/pause')}` answered HTTP 200" in after


def test_requester_pressing_approve_is_refused_privately_and_nothing_runs(bed):
    code, out = run_script(bed, "/migrate down 1\n1\n")
    assert code == 0  # a refusal is an answer, not a failure
    assert "only visible to @alice" in out.split("pressed Approve", 1)[1]
    assert bed.state() == (2, False)


def test_deny_asks_for_a_reason_in_the_modal_and_shows_it_on_the_card(bed):
    code, out = run_script(bed, "/migrate down 1\n:as bob\n2\nnot during the sale\n")
    assert code == 0, out
    assert "> [bob] Deny request · Reason: not during the sale" in out
    assert "not during the sale" in out.split("Reason: not during the sale", 1)[1]
    assert bed.state() == (2, False)


def test_a_usage_error_makes_the_script_fail(bed):
    code, out = run_script(bed, "/migrate status\n/migrate sideways\n/migrate status\n")
    assert code == 1
    assert "`/migrate sideways` could not be run" in out
    assert out.count("test: version 2 (clean)") == 2  # the script went on


def test_expected_failure_counts_as_success_and_a_missing_one_as_failure(bed):
    assert run_script(bed, ":expect failed\n/migrate sideways\n")[0] == 0
    code, out = run_script(bed, ":expect failed\n/migrate status\n")
    assert code == 1 and "expected that to fail" in out


def test_failed_migration_fails_the_script(bed):
    bed.write({"3_broken.up.sql": "ALTER TABLE nowhere ADD COLUMN x int;", "3_broken.down.sql": "SELECT 1;"})
    code, out = run_script(bed, "/migrate up\n")
    assert code == 1
    assert "migration 3 failed" in out.lower() or "failed" in out


def real_console(settings, text: str) -> tuple[int, str]:
    """``dbops console --config …`` as the bot's entry point runs it, a script on stdin."""
    out = io.StringIO()
    return console(settings, user=None, stdin=io.StringIO(text), out=out), out.getvalue()


def test_with_a_real_configuration_the_console_user_is_the_os_account_and_as_is_refused(bed):
    settings = dataclasses.replace(bed.settings, cli_users={ACCOUNT: "U0ALICE"})

    code, out = real_console(settings, "/migrate down 1\n:as bob\n1\n")

    assert code == 1  # the refused :as fails the script
    card, _, after = out.partition(f"> [{ACCOUNT}] :as bob")
    assert f"@{ACCOUNT} asks to run `/migrate down 1 test`" in card
    assert (f"console: :as is for the built-in demo. With a configuration you are who the operating system says: "
            f"the account {ACCOUNT}, acting as U0ALICE ([cli] users).") in after
    assert f"(@{ACCOUNT} pressed Approve on m1)" in after and "so you cannot approve it" in after
    assert "was approved" not in out
    assert bed.state() == (2, False)
    with pytest.raises(UsageError, match=f"--user is for the built-in demo.*the account {ACCOUNT}, acting as U0ALICE"):
        console(settings, user="bob", stdin=io.StringIO(""), out=io.StringIO())


def test_an_unmapped_console_user_cannot_approve_and_is_told_which_key_to_set(bed, control_url):
    migrate_control_database(control_url)
    asking = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                      approvals=PgApprovals(control_url))
    asked = asking.run(grammar.parse("migrate down 1"), Actor(user="U0ALICE", channel="C0INCIDENT", surface="slack"))
    settings = dataclasses.replace(bed.settings, cli_users={"someone-else": "U0BOB"})

    code, out = real_console(settings, f"/dbops approve {asked.request.id}\n")

    assert code == 0  # a refusal is an answer
    assert (f"You are the operating-system account `{ACCOUNT}`, which `[cli] users` does not map to a Slack user id"
            in out)
    assert f'add `"{ACCOUNT}" = "U…"` there' in out
    assert bed.state() == (2, False)


def test_help_lists_the_users_and_the_channel(bed):
    code, out = run_script(bed, ":help\n", user="bob")
    assert code == 0
    assert "Users: alice (U0ALICE), bob (U0BOB) ← you." in out
    assert ":as NAME" in out


def test_mrkdwn_loses_its_marks_and_mentions_get_names():
    names = Names(users={"U0BOB": "bob"}, channels={"C0X": "incident"})
    text = "*Pending*, in `schema_migrations` _now_: <@U0BOB> in <#C0X> &lt;b&gt; :warning: <https://x.io|docs>"
    assert mrkdwn_text(text, names) == "Pending, in `schema_migrations` now: @bob in #incident <b> ⚠️ docs (https://x.io)"


def test_readme_tour_walks_the_incident_and_exits_zero():
    """The README's first command: the demo (an embedded PostgreSQL of its own) and the tour."""
    demo_dir = tempfile.mkdtemp(prefix="dbops-tour-", dir="/tmp")  # short: the server's socket lives there
    try:
        with open(ROOT / "deploy" / "demo" / "tour.txt") as tour:
            done = subprocess.run([sys.executable, "-m", "bot.cli.main", "console"], check=False, stdin=tour, capture_output=True,
                                  text=True, timeout=300, cwd=ROOT, env={**os.environ, "DBOPS_DEMO_DIR": demo_dir})
    finally:
        shutil.rmtree(demo_dir, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "demo: no version (nothing applied)" in out
    assert "demo: 1 snapshot" in out
    assert "failed and left the database dirty at version 20260128006" in out
    assert "🚨 demo: migration 20260128006 failed and left the database DIRTY" in out
    assert "[1] Approve  [2] Deny  [3] Cancel" in out
    assert "was approved by @bob" in out and "Rollback checklist" in out
    assert out.rstrip().count("demo: version 20260128005 (clean)") == 1
