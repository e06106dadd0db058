"""Input errors are private and found before anything is posted: a command with a wrong name
(a snapshot that does not exist, an environment this configuration does not have) is answered
to the person who typed it, and the channel sees nothing, not a "starting" message."""

from __future__ import annotations

import pytest

from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


@pytest.fixture
def scenario(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        with serving(bed, fake, control_url) as scenario:
            yield scenario


def test_verify_of_a_snapshot_that_does_not_exist_is_answered_privately_and_posts_nothing(scenario):
    status, ack, url = scenario.command("verify nosuchsnap", command="/snapshot")

    reply = scenario.reply(url)
    assert status == 200 and reply["response_type"] == "ephemeral"
    assert "No snapshot named 'nosuchsnap'" in text_of(reply)
    assert scenario.fake.calls_to("chat.postMessage") == []  # no public "starting"


def test_an_unknown_environment_names_the_ones_this_configuration_has_privately(scenario):
    status, ack, url = scenario.command("up production")

    reply = scenario.reply(url)
    assert status == 200 and reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    assert "Unknown environment 'production'; this configuration has: test" in shown
    assert "configuration has a problem" not in shown
    assert scenario.fake.calls_to("chat.postMessage") == []
    assert scenario.bed.state() is None


@pytest.mark.parametrize("text,said", [("goto 7", "No migration file has version 7"),
                                       ("down 5", "only 0 are applied"), ("up 3", "only 1 is pending")])
def test_a_migrate_whose_arguments_do_not_fit_the_files_is_answered_privately_and_posts_nothing(scenario, text, said):
    status, ack, url = scenario.command(text)

    reply = scenario.reply(url)
    assert status == 200 and reply["response_type"] == "ephemeral", reply
    assert said in text_of(reply)
    assert scenario.fake.calls_to("chat.postMessage") == []
    assert scenario.bed.state() is None
