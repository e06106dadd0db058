"""The local Slack stand-in answers and refuses as Slack does, and bolt accepts its requests."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from tests.slack_fake import FakeSlack, press_button, sign, slash_command_body, slash_command_fields
from tests.slack_fake_socket import end_session

SECRET = "signing-secret-for-tests"


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def approval_blocks() -> list[dict]:
    button = lambda label, style: {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "style": style,
        "value": "op-7",
        "action_id": label.lower(),
    }
    return [
        section("*down 1* on production needs approval"),
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [button("Approve", "primary"), button("Deny", "danger")],
        },
    ]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


@pytest.fixture
def app(client: WebClient) -> App:
    """A bolt app wired to the fake, with the listeners the scenarios below exercise."""
    app = App(signing_secret=SECRET, client=client)

    @app.command("/migrate")
    def migrate(ack, command, say, respond, client):
        ack()
        if command["text"] == "status":
            say(blocks=[section("production is at version *42*")], text="production is at version 42")
        elif command["text"] == "plan":
            respond(text="plan: nothing to apply")
        elif command["text"] == "request":
            posted = say(blocks=approval_blocks(), text="approval needed")
            client.chat_update(channel=posted["channel"], ts=posted["ts"], text="approval needed (updated)")

    @app.action("approve")
    def approve(ack, body, respond):
        ack()
        respond(replace_original=True, text=f"Approved by <@{body['user']['id']}> ({body['actions'][0]['value']})")

    return app


def dispatch(app: App, body: str, headers: dict | None = None) -> int:
    return app.dispatch(BoltRequest(body=body, headers=headers or sign(SECRET, body))).status


# ---- the Web API -------------------------------------------------------------------------


def test_post_message_is_shown_in_the_channel_with_increasing_ts(fake, client):
    first = client.chat_postMessage(channel="C0INCIDENT", text="one")
    second = client.chat_postMessage(channel="C0INCIDENT", text="two", blocks=[section("*two*")])

    assert first["ts"] == "1700000000.000100" and float(second["ts"]) > float(first["ts"])
    assert second["message"]["blocks"] == [section("*two*")]
    shown = fake.messages("C0INCIDENT")
    assert [(m.text, m.blocks) for m in shown] == [("one", None), ("two", [section("*two*")])]
    recorded = fake.calls_to("chat.postMessage")[1]
    assert (recorded.params["channel"], recorded.response["ts"]) == ("C0INCIDENT", second["ts"])


def test_chat_update_changes_what_users_see_and_keeps_the_history(fake, client):
    posted = client.chat_postMessage(channel="C0INCIDENT", blocks=[section("running")], text="running")

    client.chat_update(channel="C0INCIDENT", ts=posted["ts"], text="done")

    [message] = fake.messages("C0INCIDENT")
    assert (message.text, message.blocks) == ("done", [section("running")])  # blocks left out are kept
    assert [u["text"] for u in message.updates] == ["done"]


def test_chat_update_of_an_unknown_message_is_message_not_found(client):
    with pytest.raises(SlackApiError) as refused:
        client.chat_update(channel="C0INCIDENT", ts="1.000100", text="x")
    assert refused.value.response["error"] == "message_not_found"


def test_ephemeral_message_is_shown_only_to_its_user(fake, client):
    answer = client.chat_postEphemeral(channel="C0INCIDENT", user="U0BOB", text="only you")

    [message] = fake.messages("C0INCIDENT")
    assert (message.ts, message.ephemeral_to, message.text) == (answer["message_ts"], "U0BOB", "only you")


def test_usergroup_members_are_listed_and_each_lookup_counted(fake, client):
    assert client.usergroups_users_list(usergroup="S0DBAS")["users"] == ["U0ALICE"]
    with pytest.raises(SlackApiError) as refused:
        client.usergroups_users_list(usergroup="S0NOPE")

    assert refused.value.response["error"] == "no_such_subteam"
    assert fake.usergroup_lookups == {"S0DBAS": 1, "S0NOPE": 1}


def test_conversations_info_knows_the_workspace_channels(client):
    assert client.conversations_info(channel="C0ALERTS")["channel"]["name"] == "alerts"
    with pytest.raises(SlackApiError) as refused:
        client.conversations_info(channel="C0ELSEWHERE")
    assert refused.value.response["error"] == "channel_not_found"


def test_form_body_with_a_token_field_is_accepted_like_slack(fake):
    form = "token=xoxb-test&channel=C0ALERTS&blocks=" + urllib.request.quote(json.dumps([section("dirty")]))
    with urllib.request.urlopen(urllib.request.Request(fake.api_url + "chat.postMessage", data=form.encode())) as got:
        assert json.loads(got.read())["ok"] is True

    call = fake.wait_for(lambda c: c.method == "chat.postMessage", timeout=1)
    assert call.ok and "token" not in call.params
    assert fake.messages("C0ALERTS")[0].blocks == [section("dirty")]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.chat_postMessage(channel="C0INCIDENT", blocks=[{"type": "bogus"}], text="x"), "invalid_blocks"),
        (lambda c: c.chat_postMessage(channel="C0INCIDENT", blocks=[section("x")] * 51, text="x"), "invalid_blocks"),
        (lambda c: c.chat_postMessage(channel="C0INCIDENT", blocks=[section("x" * 3001)], text="x"), "invalid_blocks"),
        (lambda c: c.chat_postMessage(channel="C0INCIDENT", blocks=[section("")], text="x"), "invalid_blocks"),
        (lambda c: c.chat_postMessage(channel="C0INCIDENT", text="x" * 40_001), "msg_too_long"),
        (lambda c: c.api_call("chat.postMessage", json={"channel": "C0INCIDENT"}), "no_text"),
        (lambda c: c.api_call("chat.postMessages", json={"channel": "C0INCIDENT", "text": "x"}), "unknown_method"),
        (lambda c: WebClient(token="xoxb-wrong", base_url=c.base_url).auth_test(), "invalid_auth"),
        (lambda c: WebClient(base_url=c.base_url).auth_test(), "not_authed"),
        (lambda c: c.apps_connections_open(app_token="xoxb-test"), "not_allowed_token_type"),
    ],
    ids=[
        "unknown-block-type",
        "51-blocks",
        "3001-char-section",
        "empty-section-text",
        "msg-too-long",
        "no-text",
        "unknown-method",
        "wrong-token",
        "no-token",
        "bot-token-for-socket-mode",
    ],
)
def test_what_slack_rejects_raises_slack_api_error_with_slacks_code(fake, client, call, error):
    with pytest.raises(SlackApiError) as refused:
        call(client)

    assert refused.value.response["error"] == error
    assert fake.calls[-1].error == error
    assert fake.messages("C0INCIDENT") == []


def test_invalid_blocks_are_explained_with_json_pointers(client):
    too_wide = {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}
    long_button = {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}, "action_id": "a"}],
    }
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[section("x" * 3001), too_wide, long_button])

    assert refused.value.response["errors"] == [
        "text attribute cannot exceed 3000 characters [json-pointer:/blocks/0]",
        "must be less than 2001 characters [json-pointer:/blocks/1/fields/0/text]",
        "text attribute cannot exceed 75 characters [json-pointer:/blocks/2]",
    ]


def test_well_formed_approval_blocks_are_accepted(fake, client):
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval"}},
        *approval_blocks(),
        section("ttl"),
    ]
    client.chat_postMessage(channel="C0INCIDENT", blocks=blocks, text="approval needed")
    assert fake.messages("C0INCIDENT")[0].blocks == blocks


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        ({"type": "section", "text": "plain string"}, "/blocks/1/text"),
        ({"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": "red"}, "/blocks/1/colour"),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "x"}}, "/blocks/1/text/type"),
        ({"type": "actions", "block_id": "approval", "elements": []}, "/blocks/1/block_id"),
        ({"type": "tabel"}, "/blocks/1/type"),
    ],
    ids=["text-not-an-object", "unknown-key", "mrkdwn-header", "duplicate-block-id", "misspelt-type"],
)
def test_blocks_slack_sdk_would_let_through_are_still_refused(client, block, pointer):
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[approval_blocks()[1], block])

    assert refused.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in e for e in refused.value.response["errors"])


def _confirming_button(**confirm) -> dict:
    parts = {name: {"type": "plain_text", "text": name.title()} for name in ("title", "text", "confirm", "deny")}
    return {"type": "actions", "elements": [{"type": "button", "action_id": "go", "value": "1",
                                             "text": {"type": "plain_text", "text": "Go"},
                                             "confirm": {**parts, **confirm}}]}


def test_a_complete_plain_text_confirmation_dialog_is_accepted(fake, client):
    blocks = [_confirming_button(style="danger")]
    client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=blocks)
    assert fake.messages("C0INCIDENT")[0].blocks == blocks


@pytest.mark.parametrize(
    ("confirm", "pointer"),
    [
        ({"title": {"type": "mrkdwn", "text": "*Sure?*"}}, "/confirm/title/type"),
        ({"text": {"type": "mrkdwn", "text": "loses data"}}, "/confirm/text/type"),
        ({"deny": None}, "/confirm/deny"),
        ({"confirm": {"type": "plain_text", "text": ""}}, "/confirm/confirm/text"),
        ({"title": {"type": "plain_text", "text": "t" * 101}}, ""),
        ({"text": {"type": "plain_text", "text": "t" * 301}}, ""),
        ({"deny": {"type": "plain_text", "text": "d" * 31}}, ""),
        ({"style": "warning"}, ""),  # slack_sdk points at the block
    ],
    ids=["mrkdwn-title", "mrkdwn-text", "no-deny", "empty-confirm", "long-title", "long-text", "long-deny",
         "unknown-style"],
)
def test_a_confirmation_dialog_slack_would_not_show_is_refused(client, confirm, pointer):
    block = _confirming_button(**confirm)
    if any(value is None for value in confirm.values()):
        block["elements"][0]["confirm"] = {k: v for k, v in block["elements"][0]["confirm"].items() if v is not None}
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[block])

    assert refused.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:/blocks/0{pointer and '/elements/0' + pointer}]" in e
               for e in refused.value.response["errors"]), refused.value.response["errors"]


def test_rate_limit_answers_429_with_retry_after_then_recovers(fake, client):
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C0INCIDENT", text="x")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0INCIDENT", text="x")["ok"]


def test_server_error_answers_500_for_the_requested_count(fake, client):
    fake.fail_next("chat.update", status=500, count=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as failed:
            client.chat_update(channel="C0INCIDENT", ts="1.1", text="x")
        assert failed.value.response.status_code == 500
    assert [c.status for c in fake.calls_to("chat.update")] == [500, 500]


def test_an_outage_answers_503_drops_or_hangs_every_call_until_it_ends(fake):
    quick = WebClient(token=fake.bot_token, base_url=fake.api_url, timeout=0.3, retry_handlers=[])
    fake.outage("503")
    with pytest.raises(SlackApiError) as failed:
        quick.auth_test()
    assert failed.value.response.status_code == 503
    fake.outage("drop")
    with pytest.raises(ConnectionError):
        quick.auth_test()
    fake.outage("hang")
    with pytest.raises(TimeoutError):
        quick.auth_test()
    fake.outage(None)
    assert quick.auth_test()["ok"]
    assert [(c.method, c.error) for c in fake.calls] == [("auth.test", "outage")] * 3 + [("auth.test", None)]


def test_wait_for_times_out_with_what_it_saw(fake, client):
    client.auth_test()
    started = time.monotonic()
    with pytest.raises(AssertionError, match="auth.test"):
        fake.wait_for(lambda c: c.method == "chat.postMessage", timeout=0.2)
    assert time.monotonic() - started < 2


# ---- response_url --------------------------------------------------------------------------


def test_response_url_posts_are_shown_as_slack_shows_them(fake):
    url = fake.response_url(channel="C0INCIDENT", user="U0BOB")

    in_channel = WebhookClient(url).send(text="for everyone", response_type="in_channel")
    ephemeral = WebhookClient(url).send(blocks=[section("just you")])

    assert (in_channel.status_code, in_channel.body) == (200, "ok")
    assert ephemeral.status_code == 200
    shown = [(m.text, m.ephemeral_to) for m in fake.messages("C0INCIDENT")]
    assert shown == [("for everyone", None), (None, "U0BOB")]
    assert [r.body.get("response_type") for r in fake.responses] == ["in_channel", None]


def test_delete_original_removes_the_pressed_message(fake, client):
    posted = client.chat_postMessage(channel="C0INCIDENT", blocks=approval_blocks(), text="approval needed")

    WebhookClient(fake.response_url(message_ts=posted["ts"])).send_dict({"delete_original": True})

    assert fake.wait_for_message("C0INCIDENT", lambda m: m.deleted, timeout=1).ts == posted["ts"]


def test_response_url_refuses_invalid_blocks_and_a_sixth_use(fake):
    url = fake.response_url()

    refused = WebhookClient(url).send(blocks=[section("x" * 3001)])
    uses = [WebhookClient(url).send(text=f"try {i}").status_code for i in range(5)]
    sixth = WebhookClient(url).send(text="one too many")

    assert (refused.status_code, refused.body) == (404, "invalid_blocks")
    assert uses == [200] * 5
    assert (sixth.status_code, sixth.body) == (404, "used_url")


# ---- bolt, driven by signed requests ------------------------------------------------------------


def test_signed_slash_command_is_acknowledged_and_say_reaches_the_channel(fake, app):
    assert dispatch(app, slash_command_body("/migrate", "status")) == 200

    shown = fake.wait_for_message("C0INCIDENT", lambda m: m.text == "production is at version 42")
    assert shown.blocks == [section("production is at version *42*")]


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: {**sign(SECRET, body), "X-Slack-Signature": "v0=" + "0" * 64},
        lambda body: sign("not-the-secret", body),
        lambda body: sign(SECRET, body, timestamp=int(time.time()) - 6 * 60),
    ],
    ids=["forged-signature", "wrong-secret", "six-minutes-old"],
)
def test_bolt_refuses_requests_not_signed_by_slack(fake, app, headers):
    body = slash_command_body("/migrate", "status")

    assert dispatch(app, body, headers(body)) == 401
    assert fake.calls_to("chat.postMessage") == []


def test_respond_reaches_the_response_url(fake, app):
    url = fake.response_url(user="U0ALICE")

    assert dispatch(app, slash_command_body("/migrate", "plan", response_url=url)) == 200

    answer = fake.wait_for_response(lambda r: r.ok)
    assert answer.body["text"] == "plan: nothing to apply"
    assert fake.messages("C0INCIDENT")[0].ephemeral_to == "U0ALICE"


def test_pressing_approve_replaces_the_request_with_the_outcome(fake, app):
    dispatch(app, slash_command_body("/migrate", "request", user_id="U0BOB", user_name="bob"))
    request = fake.wait_for_message("C0INCIDENT", lambda m: len(m.updates) == 1)
    assert request.text == "approval needed (updated)"

    url = fake.response_url(channel="C0INCIDENT", user="U0ALICE", message_ts=request.ts)
    assert dispatch(app, press_button(request, "Approve", user_id="U0ALICE", response_url=url)) == 200

    outcome = fake.wait_for_message("C0INCIDENT", lambda m: m.ts == request.ts and len(m.updates) == 2)
    assert (outcome.text, outcome.blocks) == ("Approved by <@U0ALICE> (op-7)", None)  # no buttons left to press


def test_a_button_the_message_does_not_show_cannot_be_pressed(fake, client):
    client.chat_postMessage(channel="C0INCIDENT", text="no buttons here")
    with pytest.raises(AssertionError, match="no button 'Approve'"):
        press_button(fake.messages("C0INCIDENT")[0], "Approve", response_url=fake.response_url())


# ---- Socket Mode ------------------------------------------------------------------------------------


@pytest.fixture
def socket_mode(fake: FakeSlack, app: App) -> Iterator[SocketModeHandler]:
    """The app connected over Socket Mode, as ``dbops serve`` runs with SLACK_APP_TOKEN set."""
    handler = SocketModeHandler(app, "xapp-test")
    handler.connect()
    yield handler
    end_session(fake.socket, handler.client)


def test_slash_command_over_socket_mode_is_acked_and_answered(fake, socket_mode):
    envelope_id = fake.socket.send_envelope("slash_commands", slash_command_fields("/migrate", "status"))

    assert fake.socket.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
    fake.wait_for_message("C0INCIDENT", lambda m: m.text == "production is at version 42")
    assert [c.ok for c in fake.calls_to("apps.connections.open")] == [True]


def test_socket_mode_url_greets_once_and_admits_one_connection(fake):
    url = fake.socket.new_url()

    with connect(url) as first:
        hello = json.loads(first.recv(timeout=5))
        with connect(url) as second, pytest.raises(ConnectionClosedError) as refused:
            second.recv(timeout=5)

    assert (hello["type"], hello["connection_info"]["app_id"]) == ("hello", "A0DBOPS")
    assert refused.value.rcvd.code == 1008
