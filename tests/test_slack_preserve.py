"""A restore that keeps the rows written since its snapshot, through Slack: the request with
--preserve, its card counting those rows, a second person's approval, and the result's
per-table report; and the card of a plain restore asking again with --preserve."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign
from tests.test_preserve import FILES, writes_after_the_snapshot


@pytest.fixture
def desk(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["restore"], preserve={"orders": ["placed"]})
        name = writes_after_the_snapshot(bed)
        with serving(bed, fake, control_url) as scenario:
            scenario.snapshot = name
            yield scenario


def card_of(desk, text: str):
    status, ack, _ = desk.command(text, command="/snapshot")
    assert status == 200 and ack == ""
    return desk.fake.wait_for_message("C0INCIDENT", lambda m: "Approve" in text_of(m) and "preserve" in text_of(m)
                                      and (text.endswith("--preserve") == ("With --preserve" in text_of(m))))


def press(desk, card, label: str, user: str) -> None:
    body = press_button(card, label, user_id=user, response_url=desk.fake.response_url(user=user, message_ts=card.ts))
    assert desk.post(body, sign(SECRET, body))[0] == 200


def test_a_preserving_restore_is_counted_on_its_card_approved_by_a_second_person_and_reports_each_table(desk):
    card = card_of(desk, f"restore {desk.snapshot} --preserve")
    shown = text_of(card)
    assert "users: 5 rows written since the snapshot; orders: 4; 1 table changed without a timestamp column" in shown
    assert "these rows are saved to a bundle beside the snapshots first" in shown
    assert desk.bed.state() == (2, False)  # nothing ran yet

    press(desk, card, "Approve", "U0BOB")
    final = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "re-imported" in text_of(m))
    report = text_of(final)
    assert "`users` 5 rows: 3 re-imported; 2 skipped: a row with the same key is there" in report
    assert "`orders` 4 rows: 4 re-imported" in report
    bundle = report.split("bundle `", 1)[1].split("`", 1)[0]
    assert bundle.startswith("test_") and bundle.endswith("_preserved")
    assert f"2 rows not put back stay in `{bundle}`" in report
    assert desk.bed.state() == (2, False) and desk.bed.query("SELECT count(*) FROM users") == [(53,)]


def test_a_plain_restores_card_offers_to_ask_again_keeping_the_rows(desk):
    card = card_of(desk, f"restore {desk.snapshot}")
    assert "Add `--preserve` to save these rows first" in text_of(card)

    press(desk, card, "Ask again with --preserve", "U0ALICE")
    again = desk.fake.wait_for_message("C0INCIDENT", lambda m: m.ts != card.ts and "With --preserve" in text_of(m))
    assert f"snapshot restore {desk.snapshot} --preserve test" in text_of(again)
    assert desk.bed.query("SELECT count(*) FROM users") == [(53,)]  # nothing ran: two requests wait
