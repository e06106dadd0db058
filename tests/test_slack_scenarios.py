"""The Slack surface end to end: signed requests, built as Slack builds them, sent over HTTP to
``dbops serve --http``'s app (waitress, bolt), with the Web API pointed at a local fake Slack
that records every call and rejects what Slack rejects. Real PostgreSQL underneath."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from tests.conftest import wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign, slash_command_body
FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);",
    "2_orders.down.sql": "DROP TABLE orders;",
}


@pytest.fixture
def scenario(make_bed, control_url):
    with FakeSlack(usergroups={"S0OPS": ["U0BOB"]}) as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], operators=["U0ALICE", "S0OPS"])
        with serving(bed, fake, control_url) as scenario:
            yield scenario


def test_status_is_answered_privately_with_the_status_card(scenario):
    status, ack, url = scenario.command("status")

    assert status == 200 and ack == ""
    reply = scenario.reply(url)
    assert reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    assert "0 applied, 2 pending" in shown and "`2_orders`" in shown
    assert scenario.fake.calls_to("chat.postMessage") == []  # nothing in the channel


def test_migrate_up_is_shown_in_the_channel_with_progress_then_the_result(scenario):
    scenario.bed.write({"3_slow.up.sql": "SELECT pg_sleep(1.5);", "3_slow.down.sql": ""})

    status, ack, _ = scenario.command("up")

    assert status == 200 and ack == ""
    posted = scenario.fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert posted.params["channel"] == "C0INCIDENT"
    final = scenario.fake.wait_for_message(
        "C0INCIDENT", lambda m: "3_slow" in text_of(m) and "elapsed" not in text_of(m), timeout=60)
    assert scenario.bed.state() == (3, False)
    assert "U0ALICE" in text_of(final)  # who ran it, for everyone in the channel
    progress = [u for u in final.updates if "elapsed" in json.dumps(u)]
    assert any("3_slow.up.sql" in json.dumps(u) for u in progress), "the step being applied was shown"
    assert ("U0ALICE", "C0INCIDENT", "migrate up", "done") in scenario.audit()
    with psycopg.connect(scenario.control_url) as conn:
        assert conn.execute("SELECT command, state, outcome FROM dbops_operations").fetchall() == [
            ("/migrate up", "finished", "done")]


def test_the_command_is_acknowledged_while_the_work_waits(scenario):
    """Ack first, work after: the lock is held elsewhere, the ack still comes back at once."""
    from commands.pg.lock import golang_migrate_lock_key
    key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=scenario.bed.url)
    with psycopg.connect(scenario.bed.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        status, ack, _ = scenario.command("up")
        assert status == 200 and ack == ""  # answered while the operation cannot even start
        refused = scenario.fake.wait_for_message(
            "C0INCIDENT", lambda m: "elapsed" not in text_of(m) and "U0ALICE" in text_of(m), timeout=30)
    assert "lock" in text_of(refused).lower()
    assert scenario.bed.state() is None


def test_forged_stale_and_unknown_requests_change_nothing(scenario):
    body = slash_command_body("/migrate", "up", response_url=scenario.fake.response_url())
    forged = sign("not-the-secret", body)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)

    assert scenario.post(body, forged)[0] == 401
    assert scenario.post(body, stale)[0] == 401
    status, ack, _ = scenario.command("now", command="/deploy")

    assert status == 200
    assert json.loads(ack)["response_type"] == "ephemeral" and "/deploy" in ack
    assert scenario.bed.state() is None
    assert scenario.fake.calls_to("chat.postMessage") == []
    assert scenario.audit() == []


def test_a_usage_error_is_answered_in_the_ack_with_the_usage_line(scenario):
    status, ack, _ = scenario.command("down")

    assert status == 200
    answer = json.loads(ack)
    assert answer["response_type"] == "ephemeral"
    assert "/migrate down N" in json.dumps(answer["blocks"])
    assert scenario.bed.state() is None


def test_a_command_from_another_channel_is_refused_privately(scenario):
    status, _, url = scenario.command("up", channel="C0RANDOM")

    reply = scenario.reply(url)
    assert status == 200 and reply["response_type"] == "ephemeral"
    assert "C0INCIDENT" in text_of(reply)
    assert scenario.bed.state() is None
    assert scenario.fake.calls_to("chat.postMessage") == []
    assert scenario.audit() == [("U0ALICE", "C0RANDOM", "migrate up", "refused")]


def test_only_operators_change_state_and_groups_are_resolved_once(scenario):
    _, _, carol = scenario.command("up 1", user="U0CAROL")
    refusal = scenario.reply(carol)
    assert refusal["response_type"] == "ephemeral" and "operator" in text_of(refusal).lower()
    assert scenario.bed.state() is None

    _, _, status_url = scenario.command("status", user="U0CAROL")  # read-only: anyone in the channel
    assert "1_users" in text_of(scenario.reply(status_url))

    scenario.command("up 1", user="U0BOB")  # in S0OPS
    wait_for(lambda: scenario.bed.state() == (1, False), what="bob's migration")
    scenario.command("up 1", user="U0BOB")
    wait_for(lambda: scenario.bed.state() == (2, False), what="bob's second migration")
    assert scenario.fake.usergroup_lookups["S0OPS"] == 1


def test_refresh_runs_the_status_again_in_place(scenario):
    _, _, url = scenario.command("status")
    scenario.reply(url)
    card = wait_for(lambda: [m for m in scenario.fake.messages("C0INCIDENT") if m.ephemeral_to], what="status card")[0]
    scenario.bed.execute("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
                         "INSERT INTO schema_migrations VALUES (2, false);")
    body = press_button(card, "Refresh", response_url=scenario.fake.response_url(message_ts=card.ts))

    assert scenario.post(body, sign(SECRET, body))[0] == 200
    refreshed = scenario.fake.wait_for_response(lambda r: r.body.get("replace_original") is True)
    shown = text_of(refreshed.body)
    assert "version 2 (clean)" in shown and "2 applied, 0 pending" in shown


def test_more_replaces_the_snapshot_list_with_the_next_page_in_place(scenario):
    from datetime import datetime, timedelta, timezone
    from tests.test_schedule import write_snapshot
    now = datetime.now(timezone.utc).replace(microsecond=0)
    directory = scenario.bed.settings.environment("test").snapshot_dir
    names = [write_snapshot(directory, now - timedelta(hours=i), reason=f"n{i}") for i in range(33)]
    _, _, url = scenario.command("list", command="/snapshot")
    first = text_of(scenario.reply(url))
    assert "test: newest 30 of 33 snapshots" in first and names[29] in first and names[30] not in first
    card = wait_for(lambda: [m for m in scenario.fake.messages("C0INCIDENT") if m.ephemeral_to], what="list card")[0]
    body = press_button(card, "More", response_url=scenario.fake.response_url(message_ts=card.ts))

    assert scenario.post(body, sign(SECRET, body))[0] == 200
    shown = text_of(scenario.fake.wait_for_response(lambda r: r.body.get("replace_original") is True).body)
    assert "test: 3 older snapshots" in shown and all(name in shown for name in names[30:])
    assert f"`{names[29]}` ·" not in shown  # named as the boundary (and in Refresh's value), not a row again


def test_a_forged_refresh_cannot_run_a_state_changing_command(scenario):
    from tests.slack_fake_requests import block_actions_body
    url = scenario.fake.response_url()
    body = block_actions_body("dbops_refresh", "/migrate up", message_ts="1.000001", response_url=url, text="Refresh")

    assert scenario.post(body, sign(SECRET, body))[0] == 200
    answer = scenario.reply(url.rsplit("/", 1)[1])
    assert "Refresh only re-runs" in text_of(answer)
    assert scenario.bed.state() is None


def test_health_reports_each_environment_in_the_guide_shape_and_503_when_dirty(scenario):
    scenario.command("up 1")
    wait_for(lambda: scenario.bed.state() == (1, False), what="migration")

    status, report = scenario.health()
    assert status == 200
    check = report["environments"]["test"]["checks"]["migrations"]
    assert check["status"] == "pass" and check["details"] == {"version": 1, "dirty": False, "pending": 1}
    assert check["message"].startswith("Migrations applied successfully (version 1)")
    assert isinstance(check["latency_ms"], int)

    scenario.bed.execute("UPDATE schema_migrations SET dirty = true")
    # The report is checked again once the last one is a few seconds old (HealthReports).
    status, report = wait_for(lambda: (answer := scenario.health())[0] == 503 and answer, what="the 503")
    assert report["status"] == "fail"
    assert report["environments"]["test"]["checks"]["migrations"]["details"]["dirty"] is True


def test_an_operation_cut_off_by_a_dead_process_is_reported_in_its_thread(scenario):
    from commands.pg.control import PgOperations
    ops = PgOperations(scenario.control_url)
    cut = ops.start(environment="test", command="/migrate up", actor="U0ALICE", channel="C0INCIDENT",
                    message_ts="1700000000.000100", owner="elsewhere:1:dead")
    with psycopg.connect(scenario.control_url, autocommit=True) as conn:
        conn.execute("UPDATE dbops_operations SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (cut,))

    scenario.bot.tracker.beat_and_reap()

    notice = scenario.fake.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("thread_ts"))
    assert notice.params["thread_ts"] == "1700000000.000100"
    assert "interrupted" in json.dumps(notice.params).lower()
    assert scenario.bed.state() is None  # reported, never retried


def test_an_answer_whose_response_url_has_expired_still_reaches_the_user(scenario):
    body = slash_command_body("/migrate", "status", user_id="U0BOB", response_url=f"{scenario.fake.base_url}/respond/expired")

    assert scenario.post(body, sign(SECRET, body))[0] == 200

    answer = scenario.fake.wait_for(lambda c: c.method == "chat.postEphemeral")
    assert answer.params["user"] == "U0BOB" and "2 pending" in json.dumps(answer.params["blocks"])
    scenario.fake.responses.clear()  # the expired URL's refusal was the point of this test


def test_slack_failing_during_progress_does_not_stop_the_operation(scenario):
    scenario.bed.write({"3_slow.up.sql": "SELECT pg_sleep(0.5);", "3_slow.down.sql": ""})
    scenario.fake.fail_next("chat.update", status=500, count=6)  # two updates, each past the client's retries

    scenario.command("up")

    wait_for(lambda: scenario.bed.state() == (3, False), what="the migration, whatever Slack does")
    scenario.fake.wait_for_message("C0INCIDENT", lambda m: "3_slow" in text_of(m) and "elapsed" not in text_of(m))
    scenario.fake.calls[:] = [c for c in scenario.fake.calls if c.method != "chat.update" or c.ok]  # the injected 500s


def test_acks_never_wait_behind_busy_workers_and_nothing_runs_twice(make_bed, control_url):
    from commands.pg.lock import golang_migrate_lock_key
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], lock_wait_seconds=30)
        with serving(bed, fake, control_url, workers=2) as scenario:
            key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=bed.url)
            with psycopg.connect(bed.url, autocommit=True) as deploy:  # a deploy holds the lock
                deploy.execute("SELECT pg_advisory_lock(%s)", (key,))
                for _ in range(3):  # two workers wait for the lock, the third command is queued
                    scenario.command("dry-run")
                wait_for(lambda: len(deploy.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                                                    "AND NOT granted").fetchall()) == 2, what="two waiting workers")
                status, ack, _ = scenario.command("upp")
                assert status == 200 and "Unknown migrate command" in ack  # answered by the ack itself
            done = wait_for(lambda: [m for m in fake.messages("C0INCIDENT") if "elapsed" not in text_of(m)]
                            if len([m for m in fake.messages("C0INCIDENT") if "elapsed" not in text_of(m)]) == 3
                            else None, what="three dry-run results")
            assert len(fake.calls_to("chat.postMessage")) == 3 and len(done) == 3  # each ran once


def test_a_replayed_request_is_refused_and_runs_nothing_twice(scenario):
    body = slash_command_body("/migrate", "up 1", response_url=scenario.fake.response_url())
    headers = sign(SECRET, body)

    assert scenario.post(body, headers)[0] == 200
    wait_for(lambda: scenario.bed.state() == (1, False), what="the first, genuine request")
    assert scenario.post(body, headers)[0] == 401  # the same signed bytes, captured and sent again

    scenario.fake.wait_for_message("C0INCIDENT", lambda m: "elapsed" not in text_of(m) and "U0ALICE" in text_of(m))
    assert scenario.bed.state() == (1, False)
    assert [e for e in scenario.audit() if e[2] == "migrate up"] == [("U0ALICE", "C0INCIDENT", "migrate up", "done")]


def test_slack_rate_limiting_is_waited_out_and_the_result_still_arrives(scenario):
    scenario.fake.fail_next("chat.postMessage", status=429, retry_after=1)

    scenario.command("up 1")

    wait_for(lambda: scenario.bed.state() == (1, False), what="the migration")
    final = scenario.fake.wait_for_message("C0INCIDENT", lambda m: "1_users" in text_of(m) and "elapsed" not in
                                           text_of(m))
    assert "U0ALICE" in text_of(final)
    limited = [c for c in scenario.fake.calls if c.status == 429]
    assert len(limited) == 1  # Slack said "slow down" once; the client waited Retry-After and posted
    scenario.fake.calls[:] = [c for c in scenario.fake.calls if c.status != 429]
