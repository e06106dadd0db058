"""Before a change: sessions already in the way of what a pending migration will lock (an
`idle in transaction` session, a transaction open longer than lock_timeout) are named by
`plan`, and `up` waits for them (blockers = "wait") or refuses at once ("refuse"), before it
takes a snapshot or runs anything."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import psycopg
from psycopg import sql
import pytest

from bot.cli.shell import result_text
from bot.slack.blocks.render import render
from commands import grammar
from commands.identity import Actor
from commands.migrate.blocker_check import in_the_way
from commands.results import Outcome, Reason, Refusal
from commands.sessions import Blocker
from tests.conftest import wait_for

FILES = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;",
         "2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;",
         "3_audit.up.sql": "CREATE TABLE audit (id int);"}


def idle_in_transaction(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, application_name="billing-worker")
    conn.execute("SELECT count(*) FROM users")
    return conn


def snapshots(bed) -> int:
    return len(list((bed.migrations.parent / "snapshots").glob("*.dump*")))


def test_plan_names_the_sessions_in_the_way_of_its_locks(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up 1")
    with idle_in_transaction(bed.url) as blocker:
        result = bed.run("migrate plan")
        assert [(b.pid, b.application_name, b.state, b.lock) for b in result.blockers] == [
            (blocker.info.backend_pid, "billing-worker", "idle in transaction", "AccessShareLock")]
    assert bed.run("migrate plan").blockers == ()


def test_up_refuses_before_changing_anything_while_a_session_is_in_its_way(make_bed):
    bed = make_bed(FILES, blockers="refuse")
    bed.run("migrate up 1")
    taken = snapshots(bed)
    with idle_in_transaction(bed.url) as blocker:
        result = bed.run("migrate up")
        assert isinstance(result, Refusal) and result.reason is Reason.BLOCKED
        assert [b.pid for b in result.blockers] == [blocker.info.backend_pid]
        assert bed.state() == (1, False) and bed.tables() == {"users"} and snapshots(bed) == taken
    assert bed.run("migrate up").outcome is Outcome.DONE and bed.state() == (3, False)


def test_up_waits_for_a_session_in_its_way_and_runs_once_it_ends(make_bed):
    bed = make_bed(FILES, blockers="wait", blocker_wait_seconds=120)
    bed.run("migrate up 1")
    blocker = idle_in_transaction(bed.url)
    progress, results = [], []
    thread = threading.Thread(target=lambda: results.append(bed.executor.run(
        grammar.parse("migrate up"), Actor(user="alice"), progress=progress.append)), daemon=True)
    thread.start()
    seen = wait_for(lambda: [p for p in list(progress) if p.step == "blockers"], what="up waiting for the blocker")
    assert seen[0].lock_wait.blockers[0].application_name == "billing-worker"
    assert bed.state() == (1, False) and thread.is_alive()
    blocker.commit()
    thread.join(timeout=60)
    assert results[0].outcome is Outcome.DONE and bed.state() == (3, False)
    blocker.close()


def test_up_that_waited_its_limit_refuses_naming_the_session(make_bed):
    bed = make_bed(FILES, blockers="wait", blocker_wait_seconds=0.3)
    bed.run("migrate up 1")
    with idle_in_transaction(bed.url):
        result = bed.run("migrate up")
    assert result.reason is Reason.BLOCKED and result.detail == "wait"
    assert [b.application_name for b in result.blockers] == ["billing-worker"] and bed.state() == (1, False)


def test_only_idle_transactions_and_those_older_than_lock_timeout_count_as_in_the_way():
    def session(pid: int, state: str, open_s: float) -> Blocker:
        return Blocker(pid=pid, session_start=None, application_name="app", client="local socket", user="app",
                       state=state, xact_seconds=open_s)

    found = (session(1, "active", 0.5), session(2, "active", 30.0), session(3, "idle in transaction", 0.1),
             session(4, "idle in transaction (aborted)", 0.1))
    assert [b.pid for b in in_the_way(found, "2s")] == [2, 3, 4]  # one try outwaits a query shorter than its limit
    assert [b.pid for b in in_the_way(found, "0")] == [1, 2, 3, 4]  # no limit: every try would wait for each


ARCHIVE = {**FILES, "2_archive.up.sql": "CREATE TABLE archive (id int);", "2_archive.down.sql": "DROP TABLE archive;"}
del ARCHIVE["2_email.up.sql"]


@pytest.mark.parametrize(("command", "start", "table"), [("migrate down 1", 1, "users"),
                                                         ("migrate goto 1", 2, "archive")])
def test_down_and_goto_refuse_before_changing_anything_while_a_session_holds_a_table_their_file_drops(
        make_bed, command, start, table):
    bed = make_bed(ARCHIVE, blockers="refuse")
    bed.run(f"migrate up {start}")
    tables, taken = bed.tables(), snapshots(bed)
    with psycopg.connect(bed.url, application_name="billing-worker") as blocker:
        blocker.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))  # idle in transaction, holding its lock on the table

        result = bed.run(command)

        assert isinstance(result, Refusal) and result.reason is Reason.BLOCKED
        assert [(b.pid, b.application_name, b.state) for b in result.blockers] == [
            (blocker.info.backend_pid, "billing-worker", "idle in transaction")]
        assert bed.state() == (start, False) and bed.tables() == tables and snapshots(bed) == taken
        card = result_text(result, command=command)
        assert f"`dbops {command.rsplit(' ', 1)[0]}` refused: sessions hold locks its statements need" in card
        assert "Nothing was changed: no snapshot was taken and no SQL ran." in card
        assert f"pid {blocker.info.backend_pid}" in card and "run the same command again" in card
        # Its button ends the session and no more: an unblock retries only an up.
        buttons = render(result, now=datetime.now(timezone.utc), command=command).blocks[-1]["elements"]
        assert [b["text"]["text"] for b in buttons] == [f"End session {blocker.info.backend_pid}"]
        assert "--retry" not in buttons[0]["value"]
    assert bed.run(command).outcome is Outcome.DONE and table not in bed.tables()
