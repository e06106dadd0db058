"""``dbops serve`` as operators run it: a real process over HTTP (killed and restarted), and
the same app over Socket Mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.slack.app import SlackSettings, build_bot
from tests.conftest import wait_for
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import post_slash_command, slash_command_fields
from tests.slack_fake_socket import end_session

ROOT = Path(__file__).resolve().parents[1]
SECRET = "a-signing-secret-for-serve-tests"
FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;",
         "2_slow.up.sql": "SELECT pg_sleep(20);", "2_slow.down.sql": ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path: Path, database_url: str, control_url: str) -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name, text in FILES.items():
        (migrations / name).write_text(text)
    path = tmp_path / "dbops.toml"
    path.write_text(f'''
[control]
database_url = "{control_url}"
heartbeat_seconds = 0.2

[environments.test]
database_url = "{database_url}"
migrations_dir = "{migrations}"
snapshot_dir = "{tmp_path / 'snapshots'}"
channels = ["C0INCIDENT"]
lock_wait_seconds = 2
require_approval = []
''')
    return path


class Served:
    """One ``dbops serve --http`` process."""

    def __init__(self, config: Path, fake: FakeSlack, tmp_path: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "DBOPS_CONFIG": str(config), "SLACK_BOT_TOKEN": fake.bot_token,
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url, "DBOPS_LOG_LEVEL": "INFO"}
        self.log = (tmp_path / f"serve-{self.port}.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "serve", "--http", "--host", "127.0.0.1",
                                         "--port", str(self.port)], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        wait_for(self.healthy, timeout=60, what="dbops serve to answer /health")

    def healthy(self) -> bool:
        assert self.process.poll() is None, f"dbops serve exited with {self.process.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def command(self, text: str, response_url: str) -> int:
        return post_slash_command(self.port, SECRET, "/migrate", text, response_url=response_url)


@pytest.fixture
def fake():
    with FakeSlack() as fake:
        yield fake


def test_an_operation_cut_off_by_sigkill_is_reported_by_the_next_process_and_not_retried(
        fake, database_url, control_url, tmp_path):
    config = _config(tmp_path, database_url, control_url)
    first = Served(config, fake, tmp_path)
    assert first.command("up", fake.response_url()) == 200
    progress = fake.wait_for(lambda c: c.method == "chat.update" and "2_slow" in json.dumps(c.params), timeout=60)
    ts = progress.params["ts"]

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    second = Served(config, fake, tmp_path)
    try:
        notice = fake.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("thread_ts") == ts,
                               timeout=30)
        assert "interrupted" in json.dumps(notice.params).lower()
        with psycopg.connect(control_url, autocommit=True) as conn:
            assert conn.execute("SELECT command, state, step FROM dbops_operations").fetchall() == [
                ("/migrate up", "interrupted", "apply")]
        # Never retried: the only operation message is the first process's, and 2 never ran again.
        assert len([c for c in fake.calls_to("chat.postMessage") if not c.params.get("thread_ts")]) == 1
    finally:
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0  # a clean stop on SIGTERM


def test_socket_mode_acknowledges_over_the_websocket_and_answers(fake, make_bed):
    bed = make_bed(FILES, channels=["C0INCIDENT"])
    slack = SlackSettings(bot_token=fake.bot_token, signing_secret=None, app_token=fake.app_token,
                          api_url=fake.api_url)
    bot = build_bot(bed.settings, slack, socket_mode=True, progress_interval=0.1)
    handler = SocketModeHandler(bot.app, slack.app_token)
    handler.connect()
    try:
        fake.socket.wait_for_connection()
        url = fake.response_url()
        status = fake.socket.send_envelope("slash_commands", slash_command_fields("/migrate", "status",
                                                                                  response_url=url))
        assert fake.socket.wait_for_ack(status)["envelope_id"] == status
        answer = fake.wait_for_response(lambda r: r.url_id == url.rsplit("/", 1)[1]).body
        assert "0 applied, 2 pending" in json.dumps(answer["blocks"])

        up = fake.socket.send_envelope("slash_commands", slash_command_fields("/migrate", "up 1",
                                                                              response_url=fake.response_url()))
        fake.socket.wait_for_ack(up)
        wait_for(lambda: bed.state() == (1, False), what="the migration")
        fake.wait_for_message("C0INCIDENT", lambda m: "1_users" in json.dumps(m.blocks) and "U0ALICE" in
                              json.dumps(m.blocks) and "elapsed" not in json.dumps(m.blocks))
    finally:
        end_session(fake.socket, handler.client)
        bot.stop()


def test_serve_starts_and_stops_without_a_warning_about_its_own_token(fake, database_url, control_url, tmp_path):
    served = Served(_config(tmp_path, database_url, control_url), fake, tmp_path)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    served.log.close()

    log = (tmp_path / f"serve-{served.port}.log").read_text()
    assert "token will be unused" not in log
    assert [json.loads(line)["event"] for line in log.splitlines()] == ["slack.connected", "serve.listening",
                                                                         "serve.stopping"], log
    assert [c.method for c in fake.calls_to("auth.test")] == ["auth.test"]  # the token is checked at start, once
