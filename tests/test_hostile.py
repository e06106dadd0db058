"""Hostile input through the signed HTTP surface: fuzzed command text and mangled Slack
payloads get a clear answer or a refusal, never a server error, and change nothing."""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import block_actions_body, sign, slash_command_fields

# The long variant runs SCALE times the examples: DBOPS_FUZZ_SCALE=20 (bench/long_tests.py).
SCALE = max(1, int(os.environ.get("DBOPS_FUZZ_SCALE", "1")))
FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}
NASTY = ["; rm -rf /", "$(reboot)", "`id`", "'; DROP TABLE users; --", "../../etc/passwd", "/etc/shadow",
         "\x00", "<!channel>", "<!here|here>", "<@U0ADMIN>", "*bold* _it_ ~s~", "\u202e", "ｍｉｇｒａｔｅ", "🔥" * 50,
         "x" * 5000, "--env=../../prod", "--reason", '"unbalanced', "production\nproduction"]
words = st.sampled_from(["status", "up", "down", "goto", "force", "dry-run", "validate", "list", "create",
                         "restore", "verify", "pin", "cleanup", "history", "approve", "deny", "lock", "release",
                         "--steps", "--to", "--snapshot", "--reason", "--retention-days", "--dry-run", "--all",
                         "-1", "0", "18446744073709551616", "test"] + NASTY)
texts = st.lists(words, max_size=6).map(" ".join) | st.text(max_size=300)


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory, server_url):
    """One served bot for the whole module (hypothesis runs many examples against it)."""
    import uuid

    import psycopg
    from psycopg import sql

    from commands.config import parse_settings
    from commands.pg import embedded
    from commands.pg.database import PgDatabases
    from commands.pg.dump import PgDumpSnapshotter
    from commands.executor import Executor
    from tests.conftest import Bed

    root = tmp_path_factory.mktemp("hostile")
    names = [f"h_{uuid.uuid4().hex[:12]}", f"hc_{uuid.uuid4().hex[:12]}"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url, control = (embedded.database_url(server_url, n) for n in names)
    migrations = root / "migrations"
    migrations.mkdir()
    for name, text in FILES.items():
        (migrations / name).write_text(text)
    document = {"control": {"database_url": control},
                "environments": {"test": {"database_url": url, "migrations_dir": str(migrations),
                                          "snapshot_dir": str(root / "snapshots"), "channels": ["C0INCIDENT"],
                                          "approvers": ["U0BOB"], "lock_wait_seconds": 1,
                                          # Only alice may change state, and her `up` and `force` are
                                          # rewritten below: anyone else's is refused, not run.
                                          "operators": ["U0ALICE"]}}}
    settings_ = parse_settings(document, source="hostile", base_dir=root, environ={})
    bed = Bed(url=url, migrations=migrations, settings=settings_,
              executor=Executor(settings_, PgDatabases(), PgDumpSnapshotter()))
    failures = _Failures()
    logging.getLogger("slack_bolt").addHandler(failures)
    with FakeSlack() as fake, serving(bed, fake, control, workers=4) as scenario:
        scenario.failures = failures.records
        yield scenario
    logging.getLogger("slack_bolt").removeHandler(failures)
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class _Failures(logging.Handler):
    """Errors bolt logged from listeners (an exception in the work after an ack is only logged)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def unchanged(scenario) -> None:
    assert scenario.bed.state() is None and scenario.bed.tables() == set()
    assert not (scenario.bed.migrations.parent / "snapshots").exists() or not any(
        p.name.endswith(".manifest.json") and "restore" in p.name for p in
        (scenario.bed.migrations.parent / "snapshots").iterdir())


@settings(max_examples=120 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["/migrate", "/snapshot", "/rollback", "/dbops", "/deploy"]), text=texts,
       user=st.sampled_from(["U0ALICE", "U0EVE", "<!channel>", ""]),
       channel=st.sampled_from(["C0INCIDENT", "C0RANDOM", "../C0INCIDENT"]))
def test_fuzzed_commands_from_anyone_anywhere_never_error_and_destroy_nothing(hostile_env, command, text, user,
                                                                               channel):
    fields = slash_command_fields(command, text.replace("up", "status").replace("force", "verify")
                                  if user == "U0ALICE" and channel == "C0INCIDENT" else text,
                                  user_id=user, channel_id=channel, response_url=hostile_env.fake.response_url())
    body = urlencode(fields)
    status, answer = hostile_env.post(body, sign(SECRET, body))
    assert status == 200, (status, answer)
    for message in [answer] + [json.dumps(c.params) for c in hostile_env.fake.calls[-3:]]:
        assert "<!channel>" not in message and "<!here" not in message  # nobody can be pinged


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drop=st.sets(st.sampled_from(list(slash_command_fields().keys())), max_size=5),
       replace=st.dictionaries(st.sampled_from(list(slash_command_fields().keys())),
                               st.sampled_from(["", "x" * 10000, "\x00", "[]", "{}", "null", "🔥"]), max_size=3))
def test_slash_payloads_with_fields_missing_or_mangled_get_a_clear_status(hostile_env, drop, replace):
    fields = {k: v for k, v in slash_command_fields("/migrate", "status",
                                                    response_url=hostile_env.fake.response_url()).items()
              if k not in drop}
    fields.update({k: v for k, v in replace.items() if k not in drop})
    body = urlencode(fields)
    status, _ = hostile_env.post(body, sign(SECRET, body))
    # Never a 500: the bot stays up and says no (401: the same bytes were sent before, a replay).
    assert status in (200, 400, 401, 404), status


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(["dbops_approve", "dbops_deny", "dbops_cancel", "dbops_refresh",
                               "dbops_rollback_choose", "unknown_action"]),
       value=st.sampled_from(["r0000000000", "/migrate up", "/rollback --steps 1 test", "", "../../x", "x" * 3000,
                              "/rollback --snapshot ../../etc test", "/migrate force 1 test"]),
       user=st.sampled_from(["U0ALICE", "U0EVE"]))
def test_forged_button_values_are_refused_and_change_nothing(hostile_env, action, value, user):
    body = block_actions_body(action, value, user_id=user, message_ts="1700000000.000100",
                              response_url=hostile_env.fake.response_url(user=user), text="Approve")
    status, _ = hostile_env.post(body, sign(SECRET, body))
    assert status in (200, 401, 404), status


def test_after_all_that_nothing_changed(hostile_env):
    hostile_env.bot.stop()  # every acknowledged command has finished
    unchanged(hostile_env)
    assert hostile_env.failures == []  # no listener raised
    # Slack refusing to show a message to a user id that is not one (a mangled payload's) is
    # Slack doing its job; anything else it refused (a bad block, an over-long text) is ours.
    expected = ("user_not_in_channel",)
    assert [c for c in hostile_env.fake.calls if not c.ok and c.error not in expected] == []
    hostile_env.fake.calls[:] = [c for c in hostile_env.fake.calls if c.ok]
    shown = " ".join(text_of(m) for m in hostile_env.fake.messages("C0INCIDENT"))
    assert "Traceback" not in shown
