"""Requests as Slack sends them to an app: signed headers, slash commands, button presses.

Tests drive ``App.dispatch(BoltRequest(body=..., headers=sign(...)))`` with these, so
bolt's real signature check and payload parsing run as they do in production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any
import urllib.request
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.slack_fake_messages import Message

TEAM_ID, TEAM_DOMAIN, APP_ID = "T0TEAM", "dbops-test", "A0DBOPS"
BOT_USER_ID, BOT_ID = "U0DBOPS", "B0DBOPS"


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with ``body``: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def slash_command_fields(
    command: str = "/migrate",
    text: str = "status",
    *,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0INCIDENT",
    channel_name: str = "incident",
    response_url: str = f"https://hooks.slack.com/commands/{TEAM_ID}/1/fake",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    trigger_id: str = "1.1.fake-trigger",
) -> dict[str, str]:
    """A slash command's fields, in the order Slack sends them (a Socket Mode ``payload``)."""
    return {
        "token": "fake-verification-token",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def slash_command_body(*args: Any, **kwargs: Any) -> str:
    """The form-encoded body Slack POSTs for a slash command; arguments as ``slash_command_fields``."""
    return urlencode(slash_command_fields(*args, **kwargs))


def block_actions_body(
    action_id: str,
    value: str,
    *,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0INCIDENT",
    channel_name: str = "incident",
    message_ts: str,
    response_url: str,
    block_id: str = "actions",
    text: str = "Approve",
    style: str | None = None,
    message_text: str = "",
    message_blocks: list[dict[str, Any]] | None = None,
    is_ephemeral: bool = False,
) -> str:
    """``payload=<JSON>`` of a button press, shaped as Slack sends ``block_actions``.

    An ephemeral message is not echoed back in the payload, as in Slack.
    """
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if style:
        action["style"] = style
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "fake-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": "1.1.fake-trigger",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    if not is_ephemeral:
        payload["message"] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": message_ts,
            "text": message_text,
            "blocks": message_blocks or [],
        }
    return urlencode({"payload": json.dumps(payload)})


def press_button(
    message: Message, label: str, *, user_id: str = "U0ALICE", user_name: str = "alice", response_url: str
) -> str:
    """The ``block_actions`` body of ``user_id`` pressing the button labelled ``label`` in ``message``.

    Fails the test if the message shows no such button, as a user could not press it.
    """
    for block in message.blocks or []:
        candidates = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in candidates:
            if element.get("type") == "button" and element["text"]["text"] == label:
                return block_actions_body(
                    element.get("action_id", ""),
                    element.get("value", ""),
                    user_id=user_id,
                    user_name=user_name,
                    channel_id=message.channel,
                    message_ts=message.ts,
                    response_url=response_url,
                    block_id=block.get("block_id", ""),
                    text=label,
                    style=element.get("style"),
                    message_text=message.text or "",
                    message_blocks=message.blocks,
                    is_ephemeral=message.ephemeral_to is not None,
                )
    raise AssertionError(f"no button {label!r} in message {message.ts}: {message.blocks!r}")


def view_submission_body(view: dict[str, Any], values: dict[str, dict[str, str]], *, user_id: str = "U0BOB",
                         user_name: str = "bob") -> str:
    """``payload=<JSON>`` of a modal submitted by ``user_id``, as Slack sends ``view_submission``.

    ``values`` maps block_id -> {action_id: typed text} (plain_text_input values).
    """
    state = {block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
             for block, actions in values.items()}
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "fake-verification-token",
        "trigger_id": "1.1.fake-trigger",
        "view": {**view, "id": "V00000001", "team_id": TEAM_ID, "state": {"values": state}, "hash": "1.fake",
                 "app_id": APP_ID, "bot_id": BOT_ID},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def post_slash_command(port: int, secret: str, command: str, text: str, *, response_url: str) -> int:
    """POST a slash command, signed with ``secret``, to the dbops serving on ``port``; its HTTP status."""
    body = slash_command_body(command, text, response_url=response_url)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body.encode(),
                                     headers=sign(secret, body), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status
