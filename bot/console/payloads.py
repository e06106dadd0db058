"""Requests shaped exactly as Slack sends them to an app, for the console to dispatch.

A slash command is a form-encoded body; a button press (``block_actions``) and a modal's
submission (``view_submission``) are ``payload=<JSON>``. The console builds these and hands
them to the bot's own ``App.dispatch``, so bolt parses them as it parses Slack's.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

TEAM_ID, TEAM_DOMAIN, APP_ID = "T0CONSOLE", "dbops-console", "A0DBOPS"
BOT_USER_ID, BOT_ID = "U0DBOPS", "B0DBOPS"
FORM = {"content-type": ["application/x-www-form-urlencoded"]}


def _user(user_id: str, name: str) -> dict[str, str]:
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def slash_command(command: str, text: str, *, user_id: str, user_name: str, channel_id: str, channel_name: str,
                  response_url: str, trigger_id: str) -> str:
    """The form-encoded body Slack POSTs for a slash command, fields in Slack's order."""
    return urlencode({"token": "console", "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN, "channel_id": channel_id,
                      "channel_name": channel_name, "user_id": user_id, "user_name": user_name, "command": command,
                      "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
                      "response_url": response_url, "trigger_id": trigger_id})


def block_actions(*, block: dict[str, Any], element: dict[str, Any], user_id: str, user_name: str, channel_id: str,
                  channel_name: str, message_ts: str, response_url: str, trigger_id: str,
                  message: dict[str, Any] | None) -> str:
    """``payload=<JSON>`` of pressing ``element`` (a button in ``block``); ``message`` is None for an
    ephemeral message, which Slack does not echo back."""
    action = {"action_id": element.get("action_id", ""), "block_id": block.get("block_id", ""),
              "text": element.get("text", {}), "value": element.get("value", ""), "type": "button",
              "action_ts": f"{time.time():.6f}"}
    if element.get("style"):
        action["style"] = element["style"]
    payload: dict[str, Any] = {
        "type": "block_actions", "user": _user(user_id, user_name), "api_app_id": APP_ID, "token": "console",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                      "is_ephemeral": message is None},
        "trigger_id": trigger_id, "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "enterprise": None,
        "is_enterprise_install": False, "channel": {"id": channel_id, "name": channel_name},
        "state": {"values": {}}, "response_url": response_url, "actions": [action],
    }
    if message is not None:
        payload["message"] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID,
                              "team": TEAM_ID, "ts": message_ts, **message}
    return urlencode({"payload": json.dumps(payload)})


def view_submission(view: dict[str, Any], values: dict[str, dict[str, str]], *, user_id: str, user_name: str,
                    trigger_id: str) -> str:
    """``payload=<JSON>`` of a modal submitted by ``user_id``; ``values``: block_id -> {action_id: text}."""
    state = {block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
             for block, actions in values.items()}
    payload = {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "user": _user(user_id, user_name),
        "api_app_id": APP_ID, "token": "console", "trigger_id": trigger_id,
        "view": {**view, "id": "V0CONSOLE", "team_id": TEAM_ID, "state": {"values": state}, "hash": "1.console",
                 "app_id": APP_ID, "bot_id": BOT_ID},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every button in ``blocks``, in reading order, with the block that holds it."""
    found = []
    for block in blocks:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        found += [(block, element) for element in elements if element.get("type") == "button"]
    return found
