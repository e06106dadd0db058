"""The schema change on the approval card, on real PostgreSQL and the Slack fake: the
expected schemas of the current and the target version compared when the request is made,
the first differences on the card, the rest in its thread; a request whose expected schema
cannot be built still works, and its card says why in one line."""

from __future__ import annotations

import json

from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

USERS = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


def card_of(desk, text: str):
    status, _, _ = desk.command(text)
    assert status == 200
    return desk.fake.wait_for_message("C0INCIDENT", lambda m: any(
        b.get("type") == "actions" and "Approve" in json.dumps(b) for b in m.blocks or []))


def approve(desk, card) -> None:
    """Approve as U0BOB and wait for the card's final state (the operation ran, its result is on it)."""
    body = press_button(card, "Approve", user_id="U0BOB",
                        response_url=desk.fake.response_url(user="U0BOB", message_ts=card.ts))
    assert desk.post(body, sign(SECRET, body))[0] == 200
    desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "dbops_approve" not in text_of(m)
                               and "elapsed" not in text_of(m), timeout=60)


def lines_of(message) -> list[str]:
    """The card's rows as a person reads them: one difference a line, without the code marks."""
    return [line.strip("`") for b in message.blocks or [] for line in
            (b.get("text") or {}).get("text", "").splitlines()]


def serve(make_bed, control_url, fake, files, **env):
    bed = make_bed(files, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"], **env)
    return bed, serving(bed, fake, control_url)


def test_an_up_request_card_shows_the_table_it_creates(make_bed, control_url):
    files = {**USERS, "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);",
             "2_orders.down.sql": "DROP TABLE orders;"}
    with FakeSlack() as fake:
        bed, served = serve(make_bed, control_url, fake, files, require_approval=["up"])
        with served as desk:
            card = card_of(desk, "up")
            rows = lines_of(card)
            assert "+ table orders" in rows and "+ table users" in rows, rows
            assert "Schema change, no version → 2: 2 differences:" in text_of(card).replace("*", "")
            assert bed.state() is None  # a request changes nothing

            approve(desk, card)
            wait_for(lambda: bed.state() == (2, False), what="the approved up")


def test_a_down_request_card_shows_the_column_it_drops(make_bed, control_url):
    files = {**USERS, "2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;",
             "2_email.down.sql": "ALTER TABLE users DROP COLUMN email;"}
    with FakeSlack() as fake:
        bed, served = serve(make_bed, control_url, fake, files, require_approval=["down"])
        with served as desk:
            assert bed.run("migrate up test").outcome.value == "done"
            card = card_of(desk, "down 1")
            assert lines_of(card).count("- column users.email text") == 1, lines_of(card)


def test_differences_beyond_the_card_are_in_its_thread(make_bed, control_url):
    tables = "\n".join(f"CREATE TABLE t{n:02} (id int);" for n in range(14))
    with FakeSlack() as fake:
        bed, served = serve(make_bed, control_url, fake, {"1_many.up.sql": tables}, require_approval=["up"])
        with served as desk:
            card = card_of(desk, "up")
            on_card = [row for row in lines_of(card) if row.startswith("+ table")]
            assert on_card == [f"+ table t{n:02}" for n in range(10)]
            assert "and 4 more, in this card's thread" in text_of(card)
            reply = fake.wait_for_message("C0INCIDENT", lambda m: m.thread_ts == card.ts)
            assert [row for row in lines_of(reply) if row.startswith("+ table")] == \
                [f"+ table t{n:02}" for n in range(10, 14)]


def test_a_request_whose_expected_schema_cannot_be_built_still_works(make_bed, control_url):
    # The file needs a table made outside the migrations: it applies to the live database,
    # never to an empty one.
    files = {"1_legacy_note.up.sql": "ALTER TABLE legacy ADD COLUMN note text;",
             "1_legacy_note.down.sql": "ALTER TABLE legacy DROP COLUMN note;"}
    with FakeSlack() as fake:
        bed, served = serve(make_bed, control_url, fake, files, require_approval=["up"])
        with served as desk:
            bed.execute("CREATE TABLE legacy (id int)")
            card = card_of(desk, "up")
            shown = text_of(card)
            assert "Schema change not shown: The migration files do not apply to an empty database: " \
                   "1_legacy_note" in shown and "The request is not affected." in shown

            approve(desk, card)
            wait_for(lambda: bed.state() == (1, False), what="the approved up")
            assert bed.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'legacy' "
                             "ORDER BY ordinal_position") == [("id",), ("note",)]
