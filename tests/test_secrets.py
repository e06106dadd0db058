"""Secrets never leave the process: with a database password and Slack tokens configured,
drive commands and their failure paths through the Slack app, then look for the secrets in
everything a person or another process could read — the log, every Slack message and
response, every file dbops wrote, and the command lines of the processes it started."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bot.logs import configure_logging
from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack

PASSWORD = "s3cr3t-Pa55w0rd-do-not-leak"
FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);",
    "1_users.down.sql": "DROP TABLE users;",
    # A failing migration whose error quotes the secret back (a DSN pasted into a migration, say).
    "2_broken.up.sql": f"SELECT '{PASSWORD}'::int;",
    "2_broken.down.sql": "",
}


@pytest.fixture
def password_url(server_url, database_url):
    """The test database, reached as a role with a password (the URL carries it)."""
    role = "dbops_secret_" + os.urandom(4).hex()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(sql.Identifier(role),
                                                                                  sql.Literal(PASSWORD)))
    assert "postgres:@" in database_url, database_url  # the embedded server's URL shape
    yield database_url.replace("postgres:@", f"{role}:{PASSWORD}@", 1)
    with psycopg.connect(database_url, autocommit=True) as conn:  # what it created goes with the database
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(role)))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


def test_no_secret_reaches_logs_slack_files_or_command_lines(make_bed, control_url, password_url, tmp_path):
    assert PASSWORD in password_url
    log = io.StringIO()
    configure_logging(level="DEBUG", stream=log)
    seen_command_lines: list[str] = []
    with FakeSlack(bot_token="xoxb-1111-2222-secretbottoken") as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], database_url=password_url)
        with serving(bed, fake, control_url) as desk:
            sampling = threading.Event()

            def sample():
                while not sampling.is_set():
                    seen_command_lines.extend(line for line in _command_lines() if "pg_dump" in line or
                                              "pg_restore" in line or "psql" in line)
                    sampling.wait(0.005)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            for text in ("status", "up", "validate", "dry-run"):  # up fails at 2: an error path
                desk.command(text)
            desk.command("create --reason audit", command="/snapshot")
            desk.command("list", command="/snapshot")
            wait_for(lambda: len([m for m in fake.messages("C0INCIDENT") if "elapsed" not in text_of(m)]) >= 6,
                     what="every answer")
            sampling.set()
            sampler.join()
        bad = make_bed(FILES, control=control_url, channels=["C0INCIDENT"],
                       database_url=password_url.replace("/t_", "/no_such_db_"))
        with serving(bad, fake, control_url) as broken:  # a connection failure quotes the URL
            broken.command("status")
            reply = broken.fake.wait_for_response(lambda r: "no_such_db" in json.dumps(r.body))
            assert "****" in json.dumps(reply.body)

    secrets = [PASSWORD, "xoxb-1111-2222-secretbottoken", SECRET]
    places = {"log": log.getvalue(),
              "slack calls": json.dumps([c.params for c in fake.calls]),
              "slack responses": json.dumps([r.body for r in fake.responses]),
              "command lines": "\n".join(seen_command_lines)}
    for path in tmp_path.rglob("*"):  # what dbops wrote: manifests, pins, state files (the test wrote migrations/)
        if path.is_file() and "migrations" not in path.parts and not path.name.endswith(".dump.zst"):
            places[str(path)] = path.read_text(errors="replace")
    assert any("pg_dump" in line for line in seen_command_lines), "the sampler saw pg_dump run"
    leaks = [(where, secret[:6]) for where, text in places.items() for secret in secrets if secret in text]
    assert leaks == []
