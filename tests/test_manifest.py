"""The Slack app manifest declares what the code uses: its commands, scopes and transports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack.listeners import SLASH_COMMANDS

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())


def test_the_manifest_declares_exactly_the_slash_commands_dbops_answers():
    declared = [c["command"] for c in MANIFEST["features"]["slash_commands"]]
    assert declared == list(SLASH_COMMANDS)
    for command in MANIFEST["features"]["slash_commands"]:
        assert command["url"].endswith("/slack/events") and command["description"]
        assert len(command["description"]) <= 100 and len(command.get("usage_hint", "")) <= 1000


def test_the_manifest_grants_every_scope_the_bot_calls_for_and_no_more():
    web_api_methods = set()
    for path in (ROOT / "bot").rglob("*.py"):  # every surface, in its package
        web_api_methods |= set(re.findall(r"client\.(chat_\w+|usergroups_\w+|conversations_\w+)\(", path.read_text()))
    needs = {"chat_postMessage": "chat:write", "chat_update": "chat:write", "chat_postEphemeral": "chat:write",
             "usergroups_users_list": "usergroups:read"}
    assert web_api_methods <= set(needs), f"a Web API method with no scope listed here: {web_api_methods - set(needs)}"
    expected = {"commands", "chat:write.public"} | {needs[m] for m in web_api_methods}
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == expected


def test_the_manifest_turns_on_interactivity_and_socket_mode():
    settings = MANIFEST["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is True
