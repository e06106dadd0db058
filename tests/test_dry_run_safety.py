"""``/migrate dry-run`` runs the pending SQL on the live database: it takes the migrations'
locks and advances sequences. So it is the operators' alone, its waits are bounded by the
environment's lock_timeout, it says what a rollback does not undo, and an environment may
require a second person's approval for it. Real PostgreSQL, the executor every surface uses,
and Slack end to end."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from bot.slack.blocks.render import render
from bot.cli.shell import result_text
from commands import grammar
from commands.config import load_settings
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.approval.results import ApprovalDecided, ApprovalNeeded, ApprovalRefused
from commands.migrate.results import DryRunResult
from commands.results import Outcome, Reason
from tests.conftest import wait_for
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
EVENTS = {"1_events.up.sql": "CREATE TABLE events (id serial PRIMARY KEY, title text);\n"
                             "INSERT INTO events (title) VALUES ('launch');\n"}
# The pending migration: it takes an exclusive lock on events, then moves the sequence on.
ADD_STATUS = {"2_add_status.up.sql": "ALTER TABLE events ADD COLUMN status text;\n"
                                     "SELECT setval('events_id_seq', 1000);\n"}
GATE = 4242  # an advisory lock the test holds, to stop a dry run half-way through its file


def ask(bed, text: str, user: str):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


def sequence_value(bed) -> int:
    return bed.query("SELECT last_value FROM events_id_seq")[0][0]


def exclusive_lock_on_events(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass "
                             "AND mode = 'AccessExclusiveLock' AND granted").fetchall())


def test_a_non_operators_slack_dry_run_is_refused_and_never_blocks_the_applications_queries(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(EVENTS, control=control_url, channels=["C0INCIDENT"], operators=["U0ALICE"])
        bed.run("migrate up", user="U0ALICE")
        # Held until the test lets go, a permitted dry run would sit inside its transaction with
        # events locked exclusively, as a slow statement would.
        gated = ADD_STATUS["2_add_status.up.sql"] + f"SELECT pg_advisory_xact_lock({GATE});\n"
        bed.write({"2_add_status.up.sql": gated})
        with serving(bed, fake, control_url) as scenario, \
                psycopg.connect(bed.url, autocommit=True) as gate, psycopg.connect(bed.url, autocommit=True) as app:
            gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
            _, _, url = scenario.command("dry-run", user="U0MALLORY")
            answered = []
            threading.Thread(target=lambda: answered.append(scenario.reply(url)), daemon=True).start()
            wait_for(lambda: answered or exclusive_lock_on_events(app), what="the answer, or the dry run's lock")
            app.execute("SET lock_timeout = '1s'")  # blocked behind a dry run, this would fail, not wait
            assert app.execute("SELECT title FROM events").fetchall() == [("launch",)]
            gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
            reply = wait_for(lambda: answered, what="the refusal")[0]
        assert reply["response_type"] == "ephemeral"
        assert "only the operators may run state-changing commands" in text_of(reply)
        assert "a dry run runs its SQL on the live database" in text_of(reply)
        assert sequence_value(bed) == 1 and bed.state() == (1, False)
        assert ("U0MALLORY", "C0INCIDENT", "migrate dry-run", "refused") in scenario.audit()


def test_an_operators_dry_run_runs_and_says_that_sequences_are_not_rolled_back(make_bed):
    bed = make_bed(EVENTS, channels=["C0INCIDENT"], operators=["U0ALICE"])
    bed.run("migrate up", user="U0ALICE")
    bed.write(ADD_STATUS)

    result = ask(bed, "migrate dry-run", user="U0ALICE")

    assert isinstance(result, DryRunResult) and result.outcome is Outcome.DONE
    assert "status" not in {c for (c,) in bed.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'")}
    assert bed.state() == (1, False)
    assert sequence_value(bed) == 1000  # what the result warns about: the rollback did not undo it
    shown = text_of(render(result, now=NOW, command="/migrate dry-run"))
    assert "rolled it back" in shown and "sequence values it took (nextval, setval" in shown
    printed = result_text(result, command="migrate dry-run", now=NOW)
    assert "stay advanced" in printed and "nextval, setval" in printed


def test_a_dry_run_waits_for_a_table_lock_no_longer_than_the_environments_lock_timeout(make_bed):
    bed = make_bed(EVENTS, lock_timeout="300ms")
    bed.run("migrate up")
    bed.write(ADD_STATUS)
    with psycopg.connect(bed.url) as reader:  # a long read holds its table lock until it commits
        reader.execute("SELECT count(*) FROM events")

        result = bed.run("migrate dry-run")

        assert result.outcome is Outcome.FAILED
        failed = result.files[0]
        assert failed.status == "failed" and failed.error.sqlstate == "55P03"
        assert "lock timeout" in failed.error.message
        assert reader.execute("SELECT title FROM events").fetchall() == [("launch",)]
    assert sequence_value(bed) == 1 and bed.state() == (1, False)


@pytest.fixture
def desk(make_bed, control_url):
    """An environment whose dry runs need a second person's approval."""
    bed = make_bed(EVENTS, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                   require_approval=["dry-run"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), approvals=PgApprovals(control_url))
    bed.run("migrate up")
    bed.write(ADD_STATUS)
    return bed


def test_a_dry_run_needs_approval_where_configured_and_runs_once_approved(desk):
    needed = ask(desk, "migrate dry-run", user="U0ALICE")

    assert isinstance(needed, ApprovalNeeded) and needed.outcome is Outcome.AWAITING_APPROVAL
    request = needed.request
    assert request.operation == "dry-run" and request.command == "migrate dry-run test"
    assert [m.version for m in request.impact.applies] == [2] and request.impact.target == 2
    assert sequence_value(desk) == 1  # nothing ran yet
    card = text_of(render(needed, now=NOW, command="/migrate dry-run"))
    assert "Tries 1 migration on the live database" in card and "does not undo sequence values" in card
    assert "Tries 1 migration on the live database" in result_text(needed, command="migrate dry-run", now=NOW)
    assert ask(desk, f"dbops approve {request.id}", user="U0ALICE").reason is Reason.SELF_APPROVAL

    decided = ask(desk, f"dbops approve {request.id}", user="U0BOB")

    assert isinstance(decided, ApprovalDecided) and decided.request.state == "executed"
    assert isinstance(decided.result, DryRunResult) and decided.result.outcome is Outcome.DONE
    assert sequence_value(desk) == 1000 and desk.state() == (1, False)
    again = ask(desk, f"dbops approve {request.id}", user="U0BOB")
    assert isinstance(again, ApprovalRefused) and again.reason is Reason.DECIDED


def test_an_approved_dry_run_is_void_when_its_file_changed_since_the_request(desk):
    request = ask(desk, "migrate dry-run", user="U0ALICE").request
    desk.write({"2_add_status.up.sql": ADD_STATUS["2_add_status.up.sql"].replace("1000", "9")})

    refused = ask(desk, f"dbops approve {request.id}", user="U0BOB")

    assert isinstance(refused, ApprovalRefused) and refused.reason is Reason.STATE_CHANGED
    assert sequence_value(desk) == 1


def test_the_example_production_configs_require_approval_for_dry_run():
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    environ = {name: f"postgresql://u@db/{name.lower()}" for name in (
        "DBOPS_CONTROL_DATABASE_URL", "PRODUCTION_DATABASE_URL", "STAGING_DATABASE_URL", "DEVELOPMENT_DATABASE_URL")}
    for file in ("togather.dbops.toml", "dbops.example.toml"):
        production = load_settings(deploy / file, environ=environ).environment("production")
        assert "dry-run" in production.require_approval, file
