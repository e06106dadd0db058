"""``GET /metrics``: Prometheus text on the serve port, scraped over real HTTP after commands ran
through the Slack fake or the executor, with the values checked: operations by outcome and
their durations, lock waits, approvals, the dirty gauge, watcher ticks, Slack API errors, and
the shared state read at scrape time no more than once per window."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.metrics.approvals import CountedApprovals
from bot.jobs.watchers import ApprovalSweeper
from bot.metrics.exporter import Metrics
from bot.slack.app import SlackSettings, build_bot
from bot.slack.http import make_server, wsgi_app
from commands import grammar
from commands.errors import UsageError
from commands.executor import Executor
from commands.identity import Actor
from commands.pg.approvals import PgApprovals
from commands.pg.control import ensure_control_schema
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.lock import golang_migrate_lock_key
from commands.results import Outcome
from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);",
    "2_orders.down.sql": "DROP TABLE orders;",
}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page: (name, its labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page: dict, name: str, **labels: str) -> float | None:
    return page.get((name, frozenset(labels.items())))


def operations(page: dict, command: str, outcome: str, environment: str = "test") -> float | None:
    return value(page, "dbops_operations_total", command=command, environment=environment, outcome=outcome)


def test_metrics_count_slack_commands_by_outcome_with_their_durations_approvals_and_slack_errors(make_bed,
                                                                                                 control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down"])
        with serving(bed, fake, control_url, failures_made=1) as desk:
            fake.fail_next("chat.postMessage", status=500)  # the first progress message: Slack fails once
            desk.command("up")
            wait_for(lambda: operations(samples(desk.metrics()[2]), "migrate up", "done") == 1, what="the up")
            # One after another: a request is bound to the lock holder it saw, and an up still running holds it.
            desk.command("up")
            wait_for(lambda: operations(samples(desk.metrics()[2]), "migrate up", "no_change") == 1, what="2nd up")
            desk.command("status", channel="C0ALERTS")  # not a channel of test's: refused
            wait_for(lambda: operations(samples(desk.metrics()[2]), "migrate status", "refused") == 1,
                     what="the status")
            desk.command("down 1")
            card = fake.wait_for_message("C0INCIDENT", lambda m: "Approve" in json.dumps(m.blocks or []))
            approve = press_button(card, "Approve", user_id="U0BOB",
                                   response_url=fake.response_url(user="U0BOB", message_ts=card.ts))
            assert desk.post(approve, sign(SECRET, approve))[0] == 200
            # The approved down is counted inside the approve, which is counted once it returns: wait for both.
            wait_for(lambda: (operations(page := samples(desk.metrics()[2]), "migrate down", "done"),
                              operations(page, "dbops approve", "done", environment="")) == (1, 1),
                     what="the down and its approval")
            status, content_type, text = desk.metrics()

    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    page = samples(text)
    assert bed.state() == (1, False)
    assert operations(page, "migrate up", "done") == 1
    assert operations(page, "migrate up", "no_change") == 1
    assert operations(page, "migrate status", "refused") == 1
    assert operations(page, "migrate down", "awaiting_approval") == 1
    assert operations(page, "migrate down", "done") == 1  # run on approval, as its requester
    assert operations(page, "dbops approve", "done", environment="") == 1
    assert value(page, "dbops_operation_duration_seconds_count", command="migrate up", environment="test") == 2
    assert value(page, "dbops_operation_duration_seconds_count", command="migrate down", environment="test") == 2
    assert value(page, "dbops_lock_waits_total", environment="test", lock="migration", outcome="acquired") >= 2
    assert value(page, "dbops_lock_waits_total", environment="test", lock="migration", outcome="timed_out") is None
    assert value(page, "dbops_approvals_decided_total", environment="test", decision="approved") == 1
    assert value(page, "dbops_slack_api_errors_total", method="chat.postMessage", error="internal_error") == 1
    # Nothing a stranger could use: no user, channel, snapshot name or address in any label.
    assert not any(secret in text for secret in ("U0ALICE", "U0BOB", "C0INCIDENT", "C0ALERTS", "127.0.0.1"))


def test_the_dirty_gauge_flips_with_what_the_watcher_last_saw_and_each_tick_is_counted(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        with serving(bed, fake, control_url) as desk:
            assert bed.run("migrate up").outcome is Outcome.DONE
            env = bed.settings.environment("test")

            desk.bot.watchers.tick(env)
            page = samples(desk.metrics()[2])
            assert value(page, "dbops_migration_dirty", environment="test") == 0
            assert value(page, "dbops_migration_version", environment="test") == 2

            bed.execute("UPDATE schema_migrations SET dirty = true")  # a deploy's migrate CLI failed half-way
            assert [e.kind for e in desk.bot.watchers.tick(env)] == ["opened"]
            assert value(samples(desk.metrics()[2]), "dbops_migration_dirty", environment="test") == 1

            bed.execute("UPDATE schema_migrations SET dirty = false")
            desk.bot.watchers.tick(env)
            page = samples(desk.metrics()[2])
    assert value(page, "dbops_migration_dirty", environment="test") == 0
    assert value(page, "dbops_watcher_ticks_total", watcher="dirty", environment="test") == 3
    assert value(page, "dbops_watcher_failures_total", watcher="dirty", environment="test") is None


def test_a_watcher_that_cannot_reach_its_database_counts_a_failed_tick(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"],
                       url="postgresql://dbops@127.0.0.1:1/nowhere")  # nothing listens on port 1
        with serving(bed, fake, control_url) as desk:
            assert desk.bot.watchers.tick(bed.settings.environment("test")) == []
            page = samples(desk.metrics()[2])
    assert value(page, "dbops_watcher_ticks_total", watcher="dirty", environment="test") == 1
    assert value(page, "dbops_watcher_failures_total", watcher="dirty", environment="test") == 1
    assert value(page, "dbops_migration_dirty", environment="test") is None  # never seen: not guessed


def test_a_migration_lock_held_elsewhere_counts_a_wait_that_timed_out(make_bed):
    bed = make_bed(FILES, lock_wait_seconds=0.2)
    metrics = Metrics(bed.settings, bed.executor.databases, None)
    executor = Executor(bed.settings, bed.executor.databases, PgDumpSnapshotter(), observer=metrics)
    key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=bed.url)
    with psycopg.connect(bed.url, autocommit=True) as holder:  # a deploy's `migrate up` holds the lock
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        refused = executor.run(grammar.parse("migrate up"), Actor(user="alice"))
    assert refused.outcome is Outcome.REFUSED and bed.state() is None

    page = samples(generate_latest(metrics.registry).decode())
    assert value(page, "dbops_lock_waits_total", environment="test", lock="migration", outcome="timed_out") == 1
    assert value(page, "dbops_lock_wait_duration_seconds_count", environment="test", lock="migration") == 1
    waited = value(page, "dbops_lock_wait_duration_seconds_sum", environment="test", lock="migration")
    assert 0.2 <= waited < 10  # lock_wait_seconds, then the refusal
    assert operations(page, "migrate up", "refused") == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pending_approvals_and_snapshots_are_read_at_most_once_per_window(make_bed, control_url, tmp_path):
    bed = make_bed(FILES, control=control_url, approvers=["U0BOB"], require_approval=["down"])
    ensure_control_schema(control_url)
    clock = Clock()
    metrics = Metrics(bed.settings, bed.executor.databases, PgApprovals(control_url), facts_seconds=30, clock=clock)
    approvals = CountedApprovals(PgApprovals(control_url), metrics)
    executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                        approvals=approvals, observer=metrics)
    scrape = lambda: samples(generate_latest(metrics.registry).decode())  # noqa: E731
    assert executor.run(grammar.parse("migrate up"), Actor(user="alice")).outcome is Outcome.DONE

    page = scrape()
    (taken,) = (tmp_path / "snapshots").glob("*.dump*")  # the up's snapshot, before it changed anything
    assert value(page, "dbops_control_database_up") == 1
    assert value(page, "dbops_approvals_pending", environment="test") == 0
    assert value(page, "dbops_snapshots", environment="test") == 1
    assert value(page, "dbops_snapshot_newest_size_bytes", environment="test") == taken.stat().st_size
    assert 0 <= value(page, "dbops_snapshot_newest_age_seconds", environment="test") < 600
    assert value(page, "dbops_snapshot_store_up", environment="test") == 1

    requested = executor.run(grammar.parse("migrate down 1"), Actor(user="alice"))
    assert requested.outcome is Outcome.AWAITING_APPROVAL
    clock.now += 29  # within the window: what was read is served again, nothing is read
    assert value(scrape(), "dbops_approvals_pending", environment="test") == 0
    clock.now += 2
    page = scrape()
    assert value(page, "dbops_approvals_pending", environment="test") == 1
    assert value(page, "dbops_approvals_pending_oldest_age_seconds", environment="test") >= 0

    approve = grammar.DbopsApprove(request_id=requested.request.id)
    assert executor.run(approve, Actor(user="U0BOB")).outcome is Outcome.DONE
    clock.now += 31
    page = scrape()
    assert value(page, "dbops_approvals_pending", environment="test") == 0
    assert value(page, "dbops_approvals_decided_total", environment="test", decision="approved") == 1
    assert value(page, "dbops_snapshots", environment="test") == 2  # the down took one too


def test_socket_mode_serves_metrics_beside_health_and_no_slack_events(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        slack = SlackSettings(bot_token=fake.bot_token, signing_secret=None, app_token=fake.app_token,
                              api_url=fake.api_url)
        bot = build_bot(bed.settings, slack, socket_mode=True)
        server = make_server(wsgi_app(bed.settings, bot.executor.databases, None, metrics=bot.metrics),
                             host="127.0.0.1", port=0)
        threading.Thread(target=server.run, daemon=True).start()
        try:
            bot.executor.run(grammar.parse("migrate status"), Actor(user="U0ALICE", channel="C0INCIDENT"))
            base = f"http://127.0.0.1:{server.effective_port}"
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                page = samples(response.read().decode())
            with pytest.raises(urllib.error.HTTPError) as events:
                urllib.request.urlopen(urllib.request.Request(f"{base}/slack/events", data=b"{}"), timeout=10)
        finally:
            server.close()
            server.task_dispatcher.shutdown()
            bot.stop()
    assert operations(page, "migrate status", "done") == 1
    assert events.value.code == 404


def test_each_approval_decision_is_counted_once_whoever_records_it(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, approvers=["U0BOB"], require_approval=["down"])
    ensure_control_schema(control_url)
    metrics = Metrics(bed.settings, bed.executor.databases, PgApprovals(control_url))
    approvals = CountedApprovals(PgApprovals(control_url), metrics)
    replicas = [Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                         approvals=approvals, observer=metrics) for _ in range(2)]
    alice, bob = Actor(user="alice"), Actor(user="U0BOB")
    assert replicas[0].run(grammar.parse("migrate up"), alice).outcome is Outcome.DONE
    denied, cancelled, expired = (replicas[0].run(grammar.parse("migrate down 1"), alice).request.id
                                  for _ in range(3))

    replicas[0].run(grammar.DbopsDeny(request_id=denied, reason="not during the sale"), bob)
    replicas[1].run(grammar.DbopsDeny(request_id=denied, reason="twice"), bob)  # already decided: not counted
    replicas[0].run(grammar.DbopsCancel(request_id=cancelled), alice)
    with psycopg.connect(control_url, autocommit=True) as conn:  # its time to live runs out
        conn.execute("UPDATE dbops_approvals SET expires_at = now() - interval '1 second' WHERE id = %s", (expired,))
    sweepers = [ApprovalSweeper(WebClient(token="xoxb-unused"), approvals) for _ in range(2)]
    assert [sweeper.sweep() for sweeper in sweepers] == [[expired], []]  # two replicas' sweeps: one closes it

    page = samples(generate_latest(metrics.registry).decode())
    decided = {decision: value(page, "dbops_approvals_decided_total", environment="test", decision=decision)
               for decision in ("approved", "denied", "cancelled", "expired")}
    assert decided == {"approved": None, "denied": 1, "cancelled": 1, "expired": 1}


def test_slack_errors_are_counted_by_method_and_code_with_bounded_labels(make_bed):
    bed = make_bed(FILES)
    metrics = Metrics(bed.settings, bed.executor.databases, None)
    with FakeSlack() as fake:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[metrics.slack_errors])
        client.chat_postMessage(channel="C0INCIDENT", text="fine")
        for _ in range(2):
            with pytest.raises(SlackApiError):
                client.chat_update(channel="C0INCIDENT", ts="1.000001", text="an edit of no message")
        with pytest.raises(SlackApiError):
            WebClient(token="xoxb-forged", base_url=fake.api_url, retry_handlers=[metrics.slack_errors]).auth_test()
    gone = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[metrics.slack_errors])
    with pytest.raises(urllib.error.URLError):  # the fake has stopped: nothing answers
        gone.auth_test()

    page = samples(generate_latest(metrics.registry).decode())
    errors = {(dict(labels)["method"], dict(labels)["error"]): count for (name, labels), count in page.items()
              if name == "dbops_slack_api_errors_total"}
    assert errors == {("chat.update", "message_not_found"): 2, ("auth.test", "invalid_auth"): 1,
                      ("auth.test", "unreachable"): 1}

    codes = metrics.slack_errors.codes  # whatever a server answers, the label values stay few and plain
    assert codes("Not A <Slack> code; DROP") == "other"
    admitted = {codes(f"made_up_{n}") for n in range(200)}
    assert len(admitted) <= 64 + 1 and "other" in admitted


def test_a_failed_migration_and_a_fault_are_counted_and_a_mistyped_environment_is_no_label(make_bed):
    bed = make_bed({**FILES, "3_broken.up.sql": "ALTER TABLE no_such_table ADD COLUMN x int;",
                    "3_broken.down.sql": ""})
    metrics = Metrics(bed.settings, bed.executor.databases, None)
    executor = Executor(bed.settings, bed.executor.databases, PgDumpSnapshotter(), observer=metrics)
    alice = Actor(user="alice")
    assert executor.run(grammar.parse("migrate up"), alice).outcome is Outcome.FAILED
    with pytest.raises(UsageError):
        executor.run(grammar.parse("migrate status prodution"), alice)  # a typo: no such environment

    page = samples(generate_latest(metrics.registry).decode())
    assert bed.state() == (2, False)  # the failing file rolled back alone
    assert operations(page, "migrate up", "failed") == 1
    assert operations(page, "migrate status", "error", environment="") == 1
    assert "prodution" not in generate_latest(metrics.registry).decode()
