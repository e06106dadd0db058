"""/rollback in Slack, the whole flow through signed payloads: plan → choose → reason →
approval by a second person → the result with the guide's checklist."""

from __future__ import annotations


import psycopg

from tests.conftest import wait_for
from tests.slack_bed import SECRET, choose_with_reason, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);\n"
                      "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);",
    "1_users.down.sql": "DROP TABLE orders;\nDROP TABLE users;",
    "2_orders_total.up.sql": "ALTER TABLE orders ADD COLUMN total numeric;",
    "2_orders_total.down.sql": "ALTER TABLE orders DROP COLUMN total;",
}


def has_buttons(message) -> bool:
    return any(b.get("type") == "actions" or "accessory" in b for b in message.blocks or [])


def test_plan_choose_approve_and_the_checklist(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down", "goto", "force", "restore"])
        with serving(bed, fake, control_url) as desk:
            desk.command("up")
            wait_for(lambda: bed.state() == (2, False), what="the migrations")

            desk.command("", command="/rollback")
            plan = fake.wait_for_message("C0INCIDENT", lambda m: "Choose" in text_of(m))
            assert "2_orders_total" in text_of(plan) and "drops column orders.total" in text_of(plan)

            choose_with_reason(desk, plan, "orders endpoint returns 500s")

            card = fake.wait_for_message("C0INCIDENT", lambda m: "dbops_approve" in text_of(m))
            assert bed.state() == (2, False)  # nothing runs before a second person approves
            approve = press_button(card, "Approve", user_id="U0BOB",
                                   response_url=fake.response_url(user="U0BOB", message_ts=card.ts))
            assert desk.post(approve, sign(SECRET, approve))[0] == 200

            wait_for(lambda: bed.state() == (1, False), what="the approved rollback")
            final = fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "checklist" in text_of(m)
                                          and not has_buttons(m))
            shown = text_of(final)
            assert "orders endpoint returns 500s" in shown
            assert "no orphaned rows" in shown.lower()
            assert "Roll the application back first" in shown  # a reminder for people, not ticked
            with psycopg.connect(control_url) as conn:
                assert conn.execute("SELECT method, reason, requester, approved_by FROM dbops_rollbacks").fetchall() \
                    == [("down", "orders endpoint returns 500s", "U0ALICE", "U0BOB")]


def test_choose_on_a_restore_option_asks_slack_to_confirm_and_says_what_is_lost(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["restore"])
        with serving(bed, fake, control_url) as desk:
            desk.command("up")
            wait_for(lambda: bed.state() == (2, False), what="the migrations")

            desk.command("", command="/rollback")
            plan = fake.wait_for_message("C0INCIDENT", lambda m: "Restore snapshot" in text_of(m))

    choices = {b["text"]["text"].split("*")[1]: b["accessory"] for b in plan.blocks if "accessory" in b}
    restore = next(button for title, button in choices.items() if ". Restore snapshot" in title)
    dialog = restore["confirm"]  # the fake accepted it: complete, plain_text, within Slack's limits
    assert dialog["title"] == {"type": "plain_text", "text": "Restore snapshot on test?"}
    assert dialog["text"]["text"].startswith("Replaces the data of test with snapshot test_")
    assert "is lost. Next you give a reason; where test requires it, a second person approves." in \
        dialog["text"]["text"]
    assert (dialog["confirm"]["text"], dialog["deny"]["text"], dialog["style"]) == ("Choose", "Not yet", "danger")
    others = [button for title, button in choices.items() if ". Restore snapshot" not in title]
    assert others and all("confirm" not in button for button in others)  # the down file: the approval asks
