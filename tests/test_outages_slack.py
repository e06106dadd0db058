"""Slack out of reach when ``dbops serve`` starts (refusing connections, answering 503,
hanging): it keeps running, logs one line per failed attempt, says so on /health, and
answers commands as soon as Slack can be reached, without a restart. Real ``dbops serve``
processes against a local fake of Slack that is started late or made to fail."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.slack.slack_link import http_link
from tests.conftest import wait_for
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import post_slash_command, slash_command_fields

ROOT = Path(__file__).resolve().parents[1]
SECRET = "a-signing-secret-for-outage-tests"
FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """One ``dbops serve`` process; its JSON log lines in ``events()``."""

    def __init__(self, tmp_path: Path, config: Path, api_url: str, *args: str, bot_token: str = "xoxb-test") -> None:
        self.port = _free_port()
        env = {**os.environ, "DBOPS_CONFIG": str(config), "SLACK_BOT_TOKEN": bot_token, "SLACK_APP_TOKEN": "xapp-test",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url}
        self.log_path = tmp_path / f"serve-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "serve", *args, "--port", str(self.port)],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def events(self, name: str | None = None) -> list[dict]:
        found = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    found.append(event)
        return found

    def health(self) -> tuple[int, dict] | None:
        assert self.process.poll() is None, f"dbops serve exited: {self.log_path.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())
        except (urllib.error.URLError, ConnectionError):
            return None

    def command(self, text: str, response_url: str) -> int:
        return post_slash_command(self.port, SECRET, "/migrate", text, response_url=response_url)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def config(make_bed, tmp_path):
    bed = make_bed(FILES)
    path = tmp_path / "dbops.toml"
    path.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "{bed.migrations}"\n'
                    'channels = ["C0INCIDENT"]\npre_migration_snapshot = false\nrequire_approval = []\n')
    return path


def _slack_check(served: Serve, status: str):
    """/health's answer once its Slack check is ``status``."""
    def answered():
        health = served.health()
        return health if health and health[1].get("checks", {}).get("slack", {}).get("status") == status else None
    return wait_for(answered, timeout=60, what=f"/health's slack check to {status}")


def test_slack_unreachable_at_start_then_reachable_and_the_bot_answers_without_a_restart(config, tmp_path):
    port = _free_port()  # Slack's address, where nothing listens yet: connections are refused
    fake = FakeSlack(port=port)
    served = Serve(tmp_path, config, f"http://127.0.0.1:{port}/api/", "--http")
    try:
        code, report = _slack_check(served, "fail")
        assert code == 503 and report["status"] == "fail"
        assert report["checks"]["slack"]["message"] == "Slack's API not reached yet: unreachable; retrying"
        assert report["environments"]["test"]["checks"]["migrations"]["status"] == "pass"
        assert str(port) not in json.dumps(report) and "xoxb" not in json.dumps(report)
        wait_for(lambda: len(served.events("slack.unreachable")) >= 2, timeout=30, what="a second attempt")

        fake.start()
        code, report = _slack_check(served, "pass")
        assert code == 200 and report["status"] == "pass"
        failed = served.events("slack.unreachable")
        assert [e["attempt"] for e in failed] == list(range(1, len(failed) + 1))  # one line per attempt
        assert all("Connection refused" in e["error"] and e["retry_in_s"] > 0 for e in failed)
        assert served.events("slack.connected")[0]["attempts"] == len(failed) + 1

        url = fake.response_url()
        assert served.command("status", url) == 200
        answer = fake.wait_for_response(lambda r: r.url_id == url.rsplit("/", 1)[1], timeout=30).body
        assert "0 applied, 1 pending" in json.dumps(answer["blocks"])
    finally:
        assert served.stop() == 0
        fake.stop()
    assert "Traceback" not in served.log_path.read_text()


def test_socket_mode_through_slack_answering_503_connects_when_slack_recovers(config, tmp_path):
    with FakeSlack() as fake:
        fake.outage("503")
        served = Serve(tmp_path, config, fake.api_url)
        try:
            code, report = _slack_check(served, "fail")
            assert code == 503 and report["checks"]["slack"]["message"] == (
                "Slack's API not reached yet: HTTP 503; retrying")
            wait_for(lambda: len(served.events("slack.unreachable")) >= 2, timeout=30, what="a second attempt")

            fake.outage(None)
            _slack_check(served, "pass")
            assert "HTTP 503" in served.events("slack.unreachable")[0]["error"]
            fake.socket.wait_for_connection()
            url = fake.response_url()
            envelope = fake.socket.send_envelope("slash_commands",
                                                 slash_command_fields("/migrate", "status", response_url=url))
            fake.socket.wait_for_ack(envelope)
            answer = fake.wait_for_response(lambda r: r.url_id == url.rsplit("/", 1)[1], timeout=30).body
            assert "0 applied, 1 pending" in json.dumps(answer["blocks"])
        finally:
            assert served.stop() == 0


def test_sigterm_stops_serve_while_it_is_still_trying_to_reach_slack(config, tmp_path):
    served = Serve(tmp_path, config, f"http://127.0.0.1:{_free_port()}/api/")  # Socket Mode, nobody there
    wait_for(lambda: served.events("slack.unreachable"), timeout=30, what="the first failed attempt")
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=15) == 0
    assert served.events("serve.stopping")[0]["signal"] == "SIGTERM"


def test_a_token_slack_refuses_at_start_is_a_clear_configuration_error(config, tmp_path):
    with FakeSlack() as fake:
        served = Serve(tmp_path, config, fake.api_url, "--http", bot_token="xoxb-revoked-token-123")
        assert served.process.wait(timeout=60) == 2
    shown = served.log_path.read_text()
    assert "failed: the dbops configuration has a problem\nSlack refused the token (invalid_auth)" in shown
    assert "xoxb-revoked-token-123" not in shown and "Traceback" not in shown


def test_an_attempt_slack_leaves_hanging_times_out_is_logged_and_the_next_one_connects():
    with FakeSlack() as fake, capture_logs() as logs:
        fake.outage("hang")
        link = http_link(fake.bot_token, fake.api_url, timeout=0.3, first_delay=0.05, pause=lambda: 1.0)
        assert link.attempt() is False
        assert link.check().as_json() == {
            "status": "fail", "message": "Slack's API not reached yet: no answer in time; retrying",
            "details": {"attempts": 1}}
        stop = threading.Event()
        running = threading.Thread(target=link.run, args=(stop,))
        running.start()
        wait_for(lambda: len([c for c in fake.calls if c.error == "outage"]) >= 3, what="attempts in the outage")
        fake.outage(None)
        running.join(timeout=30)
        assert link.check().passed
    failed = [e for e in logs if e["event"] == "slack.unreachable"]
    assert len(failed) == len([c for c in fake.calls if c.error == "outage"]) >= 3  # one line per attempt
    assert [e["retry_in_s"] for e in failed[:3]] == [0.05, 0.1, 0.2]  # doubling
    assert [e["event"] for e in logs if e["event"].startswith("slack.")][-1] == "slack.connected"
