"""A migration blocked in Slack: the progress names the blocker while it retries, the failed
result offers to cancel the blocker's query (or end its session) and retry, and that button
becomes an approval request; approved, the query is cancelled and the retry succeeds."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from commands.grammar import parse
from commands.identity import Actor
from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

FILES = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);",
         "1_users.down.sql": "DROP TABLE users;",
         "2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;"}


@pytest.fixture
def desk(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["unblock"], lock_timeout="200ms", lock_retries=2, lock_retry_seconds=0.05,
                       blockers="off")
        with serving(bed, fake, control_url) as scenario:
            scenario.command("up 1")
            wait_for(lambda: bed.state() == (1, False), what="version 1")
            yield scenario


class LongReport:
    """A report query on users, running (its AccessShareLock held) until it is cancelled."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True, application_name="monthly-report")
        self.pid = self.conn.info.backend_pid
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(600) FROM users")
        except psycopg.Error as err:
            self.error = err


def click(desk, card, label, user):
    body = press_button(card, label, user_id=user, response_url=desk.fake.response_url(user=user, message_ts=card.ts))
    assert desk.post(body, sign(SECRET, body))[0] == 200


def test_the_cancel_button_approved_cancels_the_blockers_query_and_the_retry_succeeds(desk):
    bed = desk.bed
    report = LongReport(bed.url)
    wait_for(lambda: bed.query("SELECT state FROM pg_stat_activity WHERE pid = %s", (report.pid,)) == [("active",)],
             what="the report running")
    desk.command("up")
    # While it waits, its progress names the session in its way.
    progress = desk.fake.wait_for(lambda c: c.method == "chat.update" and "waiting for AccessExclusiveLock on users"
                                  in json.dumps(c.params.get("blocks")) and f"pid {report.pid}"
                                  in json.dumps(c.params.get("blocks")))
    assert "monthly-report" in json.dumps(progress.params["blocks"])
    label = f"Cancel query of {report.pid} and retry"
    failed = desk.fake.wait_for_message("C0INCIDENT", lambda m: label in text_of(m), timeout=30)
    shown = text_of(failed)
    assert "clean at version 1" in shown and "SELECT pg_sleep(600) FROM users" in shown
    assert f"End session {report.pid} and retry" in shown
    assert bed.state() == (1, False)

    click(desk, failed, label, "U0ALICE")
    card = desk.fake.wait_for_message("C0INCIDENT", lambda m: "Approve" in text_of(m) and "unblock" in text_of(m))
    assert f"pid {report.pid}" in text_of(card) and "monthly-report" in text_of(card)
    assert report.thread.is_alive()  # nothing signalled before a second person says so
    click(desk, card, "Approve", "U0BOB")

    wait_for(lambda: bed.state() == (2, False), what="the retried migration")
    report.thread.join(timeout=30)
    assert isinstance(report.error, psycopg.errors.QueryCanceled)
    done = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "cancelled the query of" in text_of(m)
                                      and "migrated up from 1 to 2" in text_of(m), timeout=30)
    assert "U0BOB" in text_of(done)
    report.conn.close()


def test_an_approved_unblock_never_signals_a_pid_now_held_by_another_session(desk):
    bed = desk.bed
    first = psycopg.connect(bed.url, application_name="old-session")
    pid = first.info.backend_pid
    started = bed.query("SELECT backend_start FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0]
    first.close()
    # Whoever has that pid now (no one, or a new connection) started at another time: nothing is sent.
    wait_for(lambda: bed.query("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND backend_start = %s",
                               (pid, started)) == [(0,)], what="the old session gone")
    asker, approver = Actor(user="U0ALICE", channel="C0INCIDENT"), Actor(user="U0BOB", channel="C0INCIDENT")
    result = desk.bot.executor.run(parse(f"migrate unblock {pid} --terminate --session {started.isoformat()}"), asker)
    assert result.outcome.value == "awaiting_approval", result
    approved = desk.bot.executor.run(parse(f"dbops approve {result.request.id}"), approver)
    assert approved.result.gone and not approved.result.signalled


def test_an_unblocks_retry_of_an_up_that_needs_approval_becomes_its_own_request(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["up"], lock_timeout="200ms", lock_retries=0, blockers="off")
        with serving(bed, fake, control_url) as desk:
            asker, approver = Actor(user="U0ALICE", channel="C0INCIDENT"), Actor(user="U0BOB", channel="C0INCIDENT")
            run = desk.bot.executor.run
            run(parse(f"dbops approve {run(parse('migrate up 1'), asker).request.id}"), approver)
            assert bed.state() == (1, False)
            blocker = psycopg.connect(bed.url, application_name="report-job")
            blocker.execute("SELECT * FROM users")
            pid = blocker.info.backend_pid
            failed = run(parse(f"dbops approve {run(parse('migrate up'), asker).request.id}"), approver).result
            assert failed.lock_wait.blockers[0].pid == pid and bed.state() == (1, False)
            # Unblock needs no approval here; its retry is an up, which does: a request, not a run.
            ended = run(parse(f"migrate unblock {pid} --terminate --retry"), asker)
            assert ended.signalled and ended.retry.outcome.value == "awaiting_approval"
            assert ended.retry.request.requester == "U0ALICE" and bed.state() == (1, False)
            done = run(parse(f"dbops approve {ended.retry.request.id}"), approver)
            assert done.result.outcome.value == "done" and bed.state() == (2, False)
