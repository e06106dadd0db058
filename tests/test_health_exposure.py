"""``GET /health`` needs no credentials, so it tells a stranger nothing about how to reach a
database and cannot be used to open sessions on them; ``dbops serve`` listens on loopback
unless told otherwise. Driven against ``dbops serve`` processes and the app in waitress."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from bot.slack.health_reports import CACHE_SECONDS, HealthReports
from commands.config import load_settings
from bot.slack.http import make_server, wsgi_app
from commands.pg.database import PgDatabases
from tests.conftest import wait_for
from tests.slack_fake import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> tuple[int, bytes] | None:
    """Status and body of GET /health, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError):
        return None


class Serving:
    """One ``dbops serve`` process, its output in a file."""

    def __init__(self, args: list[str], config: Path, fake: FakeSlack, tmp_path: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "DBOPS_CONFIG": str(config), "SLACK_BOT_TOKEN": fake.bot_token,
               "SLACK_APP_TOKEN": fake.app_token, "SLACK_SIGNING_SECRET": "a-signing-secret",
               "SLACK_API_URL": fake.api_url}
        self.log_path = tmp_path / f"serve-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "serve", *args, "--port", str(self.port)],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_until_answering(self) -> tuple[int, bytes]:
        def answered():
            assert self.process.poll() is None, f"dbops serve exited: {self.log_path.read_text()}"
            return _health(self.port)
        return wait_for(answered, timeout=60, what="dbops serve to answer /health")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def fake():
    with FakeSlack() as fake:
        yield fake


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on ``port``, as the kernel lists them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                found.add(socket.inet_ntoa(raw[::-1]) if len(raw) == 4 else raw.hex())
    return found


def test_health_of_unreachable_databases_names_no_user_host_port_database_or_password(fake, tmp_path):
    closed = _free_port()  # nothing listens there: connection refused
    (tmp_path / "m").mkdir()
    urls = {"alpha": f"postgresql://alpha_user:alpha-Pa55word@127.0.0.1:{closed}/alpha_db",
            "beta": f"postgresql://beta_user@127.0.0.1:{closed}/beta_db?sslmode=disable&pass%77ord=beta-Pa55word",
            "gamma": f"postgresql://gamma_user@127.0.0.1:{closed}/gamma_db?password=gamma%2DPa55word"}
    config = tmp_path / "dbops.toml"
    config.write_text("".join(f'[environments.{name}]\ndatabase_url = "{url}"\nmigrations_dir = "m"\n'
                              'pre_migration_snapshot = false\nrequire_approval = []\n' for name, url in urls.items()))
    served = Serving(["--http"], config, fake, tmp_path)
    try:
        status, body = served.wait_until_answering()
    finally:
        served.stop()

    assert status == 503
    report = json.loads(body)
    for name in urls:  # `jq '.environments.NAME.checks.migrations'` keeps the guide's shape
        check = report["environments"][name]["checks"]["migrations"]
        assert {k: v for k, v in check.items() if k != "latency_ms"} == {
            "status": "fail", "message": "database unreachable",
            "details": {"version": None, "dirty": None, "pending": None}}
    shown = body.decode()
    # (the word "pass" itself is there: the Slack check passes)
    for fact in ("_user", "_db", "127.0.0.1", str(closed), "Pa55word", "sslmode", "pass%77ord", "password"):
        assert fact not in shown, fact
    log = served.log_path.read_text()  # the operator's log has the reason, still without passwords
    assert "health.check_failed" in log and f"127.0.0.1:{closed}/beta_db" in log
    assert "Pa55word" not in log


def test_fifty_health_calls_open_one_session_per_cache_window(make_bed):
    bed = make_bed(FILES)
    server = make_server(wsgi_app(bed.settings, PgDatabases(application_name="dbops-health"), None),
                         host="127.0.0.1", port=0)
    threading.Thread(target=server.run, daemon=True).start()
    port = server.effective_port

    def sessions_so_far(conn) -> int:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]

    try:
        with psycopg.connect(bed.url, autocommit=True) as counter:
            before = sessions_so_far(counter)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=10) as callers:  # a burst at once, then one after another
                answers = list(callers.map(lambda _: _health(port), range(25)))
            answers += [_health(port) for _ in range(25)]
            windows = 1 + int((time.monotonic() - started) // CACHE_SECONDS)
            # A session's statistics are flushed before it leaves pg_stat_activity.
            wait_for(lambda: not counter.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                                                 "'dbops-health'").fetchall(), what="the checks' sessions to end")
            opened = sessions_so_far(counter) - before
    finally:
        server.close()
        server.task_dispatcher.shutdown()

    assert [status for status, _ in answers] == [200] * 50
    assert 1 <= opened <= windows  # one check per window for all callers, where each call opened one before


def test_while_a_check_hangs_on_a_database_other_callers_get_the_last_report_at_once(tmp_path):
    port = _free_port()
    (tmp_path / "m").mkdir()
    (tmp_path / "dbops.toml").write_text(f'[environments.stalled]\ndatabase_url = "postgresql://u@127.0.0.1:{port}/d"\n'
                                         'migrations_dir = "m"\npre_migration_snapshot = false\nrequire_approval = []\n')
    now = [0.0]
    reports = HealthReports(load_settings(tmp_path / "dbops.toml", environ={}), PgDatabases(), clock=lambda: now[0])
    first = reports.current()  # nothing listens yet: refused at once
    assert first[0] is False

    with socket.socket() as listener, ThreadPoolExecutor(max_workers=2) as callers:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        now[0] += CACHE_SECONDS
        refreshing = callers.submit(reports.current)
        held, _ = listener.accept()  # the refresh's session: accepted, never answered
        with held:
            assert callers.submit(reports.current).result(timeout=30) is first  # not held behind it
        assert refreshing.result(timeout=30)[1]["environments"]["stalled"]["checks"]["migrations"]["message"] == (
            "database unreachable")


def _serving_one_environment(mode: list[str], bed, fake, tmp_path) -> "Serving":
    """``dbops serve`` (Socket Mode, or ``--http``) in a process of its own, for one environment: ``bed``'s."""
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "{bed.migrations}"\n'
                      'pre_migration_snapshot = false\nrequire_approval = []\n')
    return Serving(mode, config, fake, tmp_path)


@pytest.mark.parametrize("mode", [[], ["--http"]], ids=["socket-mode", "http"])
def test_serve_listens_on_loopback_only_unless_given_a_host(mode, fake, make_bed, tmp_path):
    served = _serving_one_environment(mode, make_bed(FILES), fake, tmp_path)
    try:
        assert served.wait_until_answering()[0] == 200
        assert _listening_addresses(served.port) == {"127.0.0.1"}
    finally:
        served.stop()


def _metrics(port: int) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


@pytest.mark.parametrize("mode", [[], ["--http"]], ids=["socket-mode", "http"])
def test_dbops_serve_answers_metrics_beside_health_naming_no_database_or_token(mode, fake, make_bed, tmp_path):
    bed = make_bed(FILES)
    served = _serving_one_environment(mode, bed, fake, tmp_path)
    try:
        served.wait_until_answering()
        status, content_type, page = _metrics(served.port)
    finally:
        served.stop()

    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE dbops_operations_total counter" in page and "process_resident_memory_bytes" in page
    for secret in (bed.url, fake.bot_token, fake.app_token, "a-signing-secret", str(bed.migrations)):
        assert secret not in page
