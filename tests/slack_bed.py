"""A running ``dbops serve --http`` app for scenario tests: waitress and bolt in this process,
the Web API pointed at a FakeSlack, signed requests sent over real HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import psycopg

from bot.slack.app import Bot, SlackSettings, build_bot
from bot.slack.http import HttpApp, make_server, wsgi_app
from tests.conftest import Bed
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import sign, slash_command_body

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Scenario:
    bed: Bed
    fake: FakeSlack
    bot: Bot
    port: int
    control_url: str
    http: HttpApp | None = None  # the WSGI app being served: its replay guard, its health reports

    def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/slack/events", data=body.encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def command(self, text: str, *, command: str = "/migrate", user: str = "U0ALICE",
                channel: str = "C0INCIDENT", timestamp: int | None = None,
                secret: str = SECRET) -> tuple[int, str, str]:
        """Send a slash command; return (HTTP status, ack body, the command's response URL id)."""
        url = self.fake.response_url(channel=channel, user=user)
        body = slash_command_body(command, text, user_id=user, channel_id=channel, response_url=url)
        status, ack = self.post(body, sign(secret, body, timestamp))
        return status, ack, url.rsplit("/", 1)[1]

    def reply(self, url_id: str, timeout: float = 30) -> dict[str, Any]:
        return self.fake.wait_for_response(lambda r: r.url_id == url_id, timeout=timeout).body

    def health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def metrics(self) -> tuple[int, str, str]:
        """GET /metrics: status, content type and the Prometheus text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()

    def audit(self) -> list[tuple]:
        with psycopg.connect(self.control_url, autocommit=True) as conn:
            return conn.execute("SELECT actor, channel, command, outcome FROM dbops_audit_log ORDER BY id").fetchall()


def text_of(message: dict[str, Any] | Any) -> str:
    """Everything a user reads in a message: its blocks' text, flattened."""
    blocks = message["blocks"] if isinstance(message, dict) else message.blocks
    return json.dumps(blocks, ensure_ascii=False)


@contextmanager
def serving(bed: Bed, fake: FakeSlack, control_url: str, *, workers: int = 32,
            failures_made: int = 0) -> Iterator[Scenario]:
    """Serve ``bed``'s settings; on the way out, fail if Slack rejected anything dbops sent
    (``failures_made``: how many calls the test itself made the fake fail, with ``fail_next``)."""
    slack = SlackSettings(bot_token=fake.bot_token, signing_secret=SECRET, app_token=None, api_url=fake.api_url)
    bot = build_bot(bed.settings, slack, progress_interval=0.1, workers=workers)
    http = wsgi_app(bed.settings, bot.executor.databases, bot.app, signing_secret=SECRET, metrics=bot.metrics)
    server = make_server(http, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Scenario(bed=bed, fake=fake, bot=bot, port=server.effective_port, control_url=control_url, http=http)
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        bot.stop()
    rejected = [c for c in fake.calls if not c.ok] + [r for r in fake.responses if not r.ok]
    assert len(rejected) == failures_made, f"Slack rejected: {rejected}"


def choose_with_reason(scenario: Scenario, message, reason: str, *, user: str = "U0ALICE",
                       user_name: str = "alice") -> None:
    """Press the first Choose of ``message`` (a rollback plan or an alert) and give ``reason``
    in the modal it opens, as a person would."""
    from tests.conftest import wait_for
    from tests.slack_fake_requests import press_button, view_submission_body
    choose = press_button(message, "Choose", user_id=user,
                          response_url=scenario.fake.response_url(user=user, message_ts=message.ts))
    assert scenario.post(choose, sign(SECRET, choose))[0] == 200
    modal = wait_for(lambda: scenario.fake.views, what="the reason modal")[-1]
    body = view_submission_body(modal, {"reason": {"reason": reason}}, user_id=user, user_name=user_name)
    assert scenario.post(body, sign(SECRET, body))[0] == 200
