"""The two-person rule in Slack: the request card, its buttons, and the card's final state."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign, view_submission_body

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);",
    "2_orders.down.sql": "DELETE FROM orders;\nDROP TABLE orders;",
}


@pytest.fixture
def desk(make_bed, control_url):
    with FakeSlack(usergroups={"S0DBAS": ["U0CAROL"]}) as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB", "S0DBAS"],
                       require_approval=["down"])
        with serving(bed, fake, control_url) as scenario:
            _, _, _ = scenario.command("up")
            wait_for(lambda: bed.state() == (2, False), what="the migrations")
            yield scenario


def request_card(desk):
    status, ack, _ = desk.command("down 1")
    assert status == 200 and ack == ""
    return desk.fake.wait_for_message("C0INCIDENT", lambda m: any(
        b.get("type") == "actions" and "Approve" in json.dumps(b) for b in m.blocks or []))


def click(desk, card, label, user):
    body = press_button(card, label, user_id=user, response_url=desk.fake.response_url(user=user, message_ts=card.ts))
    assert desk.post(body, sign(SECRET, body))[0] == 200


def closed(desk, card):
    """The card in its final state: the operation ran and its audit record is written."""
    return desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "U0" in text_of(m)
                                      and "dbops_approve" not in text_of(m) and "elapsed" not in text_of(m))


def current(desk, card):
    return next(m for m in desk.fake.messages("C0INCIDENT") if m.ts == card.ts)


def test_a_down_posts_a_card_with_its_impact_and_changes_nothing(desk):
    card = request_card(desk)

    shown = text_of(card)
    assert "orders" in shown and "drops table orders" in shown and "deletes rows from orders" in shown
    assert "U0ALICE" in shown and card.ephemeral_to is None  # the whole channel sees it
    assert desk.bed.state() == (2, False)


def test_approve_on_a_down_asks_slack_to_confirm_with_what_will_be_lost(desk):
    card = request_card(desk)

    approve, deny, cancel = next(b for b in card.blocks if b["type"] == "actions")["elements"]
    dialog = approve["confirm"]  # the fake accepted it: complete, plain_text, within Slack's limits
    assert {part: dialog[part]["text"] for part in ("title", "text", "confirm", "deny")} == {
        "title": "Approve down on test?",
        "text": "Reverts 1 migration on test, version 2 → 1. Data their down files drop (2 statements) is lost. "
                "It runs at once, as requested: /migrate down 1 test",
        "confirm": "Approve", "deny": "Not yet"}
    assert dialog["style"] == "danger"
    assert "confirm" not in deny and "confirm" not in cancel  # saying no loses nothing


def test_the_requester_pressing_approve_is_told_privately_and_nothing_runs(desk):
    card = request_card(desk)

    click(desk, card, "Approve", "U0ALICE")

    refusal = desk.fake.wait_for_response(lambda r: r.body.get("response_type") == "ephemeral")
    assert "someone else" in text_of(refusal.body).lower()
    assert desk.bed.state() == (2, False)
    assert "Approve" in text_of(current(desk, card))  # still waiting for a second person


def test_a_double_click_by_an_approver_runs_the_rollback_once_and_closes_the_card(desk):
    card = request_card(desk)

    clicks = [threading.Thread(target=click, args=(desk, card, "Approve", "U0CAROL")) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(timeout=30)

    final = closed(desk, card)
    assert "U0CAROL" in text_of(final) and "2_orders" in text_of(final)
    assert desk.bed.state() == (1, False)
    with psycopg.connect(desk.control_url) as conn:
        assert conn.execute("SELECT count(*) FROM dbops_audit_log WHERE command = 'migrate down' "
                            "AND outcome = 'done'").fetchone() == (1,)
        assert conn.execute("SELECT state, decided_by FROM dbops_approvals").fetchall() == [("executed", "U0CAROL")]


def test_deny_asks_for_a_reason_and_the_card_shows_it(desk):
    card = request_card(desk)

    click(desk, card, "Deny", "U0BOB")
    view = wait_for(lambda: desk.fake.views, what="the deny modal")[0]
    empty = view_submission_body(view, {"reason": {"reason": "   "}}, user_id="U0BOB")
    status, answer = desk.post(empty, sign(SECRET, empty))
    assert status == 200 and json.loads(answer)["response_action"] == "errors"

    body = view_submission_body(view, {"reason": {"reason": "restore the snapshot instead"}}, user_id="U0BOB")
    assert desk.post(body, sign(SECRET, body))[0] == 200

    final = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "restore the snapshot instead"
                                       in text_of(m))
    assert "Approve" not in text_of(final)
    assert desk.bed.state() == (2, False)


def test_someone_not_an_approver_is_refused_privately(desk):
    card = request_card(desk)

    click(desk, card, "Approve", "U0DAVE")

    refusal = desk.fake.wait_for_response(lambda r: r.body.get("response_type") == "ephemeral")
    assert "not one of the approvers" in text_of(refusal.body)
    assert desk.bed.state() == (2, False)


def test_an_expired_request_cannot_be_approved_and_its_card_says_so(desk):
    card = request_card(desk)
    with psycopg.connect(desk.control_url, autocommit=True) as conn:  # fifteen minutes pass
        conn.execute("UPDATE dbops_approvals SET expires_at = now() - interval '1 second'")

    click(desk, card, "Approve", "U0BOB")

    refusal = desk.fake.wait_for_response(lambda r: r.body.get("response_type") == "ephemeral")
    assert "expired" in text_of(refusal.body).lower()
    closed = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "Approve" not in text_of(m))
    assert "expired" in text_of(closed).lower()
    assert desk.bed.state() == (2, False)


def test_an_approval_is_void_when_someone_ran_up_meanwhile(desk):
    card = request_card(desk)
    desk.bed.write({"3_audit.up.sql": "CREATE TABLE audit (id bigint);", "3_audit.down.sql": "DROP TABLE audit;"})
    desk.command("up")
    wait_for(lambda: desk.bed.state() == (3, False), what="the other up")

    click(desk, card, "Approve", "U0BOB")

    refusal = desk.fake.wait_for_response(lambda r: r.body.get("response_type") == "ephemeral")
    assert "now it is at 3" in text_of(refusal.body)
    assert desk.bed.state() == (3, False)  # the down 1 meant for version 2 did not run at 3
    void = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "Approve" not in text_of(m))
    assert "void" in text_of(void).lower() or "no longer" in text_of(void).lower()


def test_two_approvers_clicking_at_once_run_it_once(desk):
    card = request_card(desk)
    barrier = threading.Barrier(2)

    def approve(user):
        barrier.wait()
        click(desk, card, "Approve", user)

    clicks = [threading.Thread(target=approve, args=(u,)) for u in ("U0BOB", "U0CAROL")]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(timeout=30)

    closed(desk, card)
    assert desk.bed.state() == (1, False)
    desk.fake.wait_for_response(lambda r: "already" in text_of(r.body).lower())  # the loser is told
    with psycopg.connect(desk.control_url) as conn:
        assert conn.execute("SELECT count(*) FROM dbops_audit_log WHERE command = 'migrate down' "
                            "AND outcome = 'done'").fetchone() == (1,)


def test_two_bot_instances_sharing_the_control_database_execute_once(desk):
    card = request_card(desk)
    with serving(desk.bed, desk.fake, desk.control_url) as other:
        clicks = [threading.Thread(target=click, args=(instance, card, "Approve", "U0BOB")) for instance in (desk, other)]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join(timeout=30)
        closed(desk, card)
        assert desk.bed.state() == (1, False)
        desk.fake.wait_for_response(lambda r: "already" in text_of(r.body).lower())
    with psycopg.connect(desk.control_url) as conn:
        assert conn.execute("SELECT count(*) FROM dbops_audit_log WHERE command = 'migrate down' "
                            "AND outcome = 'done'").fetchone() == (1,)


def test_a_request_survives_a_restart_of_the_bot(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down"])
        with serving(bed, fake, control_url) as first:
            first.command("up")
            wait_for(lambda: bed.state() == (2, False), what="the migrations")
            card = request_card(first)
        with serving(bed, fake, control_url) as second:  # a new process: nothing in memory
            click(second, card, "Approve", "U0BOB")
            wait_for(lambda: bed.state() == (1, False), what="the approved rollback after the restart")


def test_an_expired_requests_card_is_closed_by_the_sweeper_before_anyone_clicks(desk):
    card = request_card(desk)
    with psycopg.connect(desk.control_url, autocommit=True) as conn:
        conn.execute("UPDATE dbops_approvals SET expires_at = now() - interval '1 second'")

    assert len(desk.bot.watchers.sweeper.sweep()) == 1
    assert desk.bot.watchers.sweeper.sweep() == []  # once

    expired = current(desk, card)
    assert "expired" in text_of(expired).lower() and "dbops_approve" not in text_of(expired)
    assert desk.bed.state() == (2, False)
