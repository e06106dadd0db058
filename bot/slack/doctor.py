"""The Slack side of ``/dbops doctor``: Slack's ``auth.test`` with the bot token (the
``commands.probes.SlackCheck`` contract), for the bot and for ``dbops doctor`` in a shell."""

from __future__ import annotations

from typing import Mapping

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.slack_link import DEFAULT_API_URL
from commands.redact import redact


class SlackAuthCheck:
    """``auth.test`` through ``client`` (whose token is the one checked)."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def auth_test(self) -> tuple[bool, str]:
        try:
            answer = self.client.auth_test()
        except SlackApiError as err:
            return False, f"Slack refused the token ({err.response.get('error') or 'no error code'})"
        except (SlackClientError, OSError) as err:
            return False, redact(f"could not reach Slack at {self.client.base_url}: {err}")
        return True, f"authenticated as {answer.get('user') or 'the bot'} in workspace {answer.get('team') or '?'}"


def slack_check_from_environ(environ: Mapping[str, str]) -> SlackAuthCheck | None:
    """The check for a shell: SLACK_BOT_TOKEN against SLACK_API_URL (Slack's own by default);
    None when no token is set, which the doctor reports as not configured."""
    token = environ.get("SLACK_BOT_TOKEN")
    if not token:
        return None
    redact.register(token)
    api_url = environ.get("SLACK_API_URL") or DEFAULT_API_URL
    return SlackAuthCheck(WebClient(token=token, base_url=api_url.rstrip("/") + "/", timeout=10))
