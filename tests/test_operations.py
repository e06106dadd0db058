"""Running operations in the control database: a heartbeat while they run, and those left
behind by a dead process marked interrupted and reported once, never retried."""

from __future__ import annotations

import threading

import psycopg

from bot.slack.operations import OperationTracker
from commands.pg.control import PgOperations, migrate_control_database


def _operations(control_url: str) -> PgOperations:
    migrate_control_database(control_url)
    return PgOperations(control_url)


def _start(ops: PgOperations, owner: str, command: str = "/migrate up") -> int:
    return ops.start(environment="production", command=command, actor="U0ALICE", channel="C0INCIDENT",
                     message_ts="1700000000.000100", owner=owner)


def _age_heartbeats(control_url: str, seconds: int) -> None:
    """What a process that died ``seconds`` ago leaves: heartbeats that stopped."""
    with psycopg.connect(control_url, autocommit=True) as conn:
        conn.execute("UPDATE dbops_operations SET heartbeat_at = heartbeat_at - make_interval(secs => %s)",
                     (seconds,))


def _states(control_url: str) -> dict[int, str]:
    with psycopg.connect(control_url, autocommit=True) as conn:
        return dict(conn.execute("SELECT id, state FROM dbops_operations").fetchall())


def test_an_operation_of_a_dead_process_is_reported_interrupted_once(control_url):
    ops = _operations(control_url)
    dead = _start(ops, "host:1:dead")
    ops.record_step(dead, "apply")
    _age_heartbeats(control_url, 60)
    reported = []
    tracker = OperationTracker(ops, heartbeat_seconds=10, report=reported.append, owner="host:2:new")

    tracker.beat_and_reap()
    tracker.beat_and_reap()

    assert [(r.id, r.command, r.step, r.channel, r.message_ts) for r in reported] == [
        (dead, "/migrate up", "apply", "C0INCIDENT", "1700000000.000100")]
    assert _states(control_url) == {dead: "interrupted"}


def test_a_live_operation_keeps_its_heartbeat_and_is_not_reaped(control_url):
    ops = _operations(control_url)
    tracker = OperationTracker(ops, heartbeat_seconds=10, report=lambda r: None, owner="host:3:live")
    live = tracker.start(environment="production", command="/snapshot create", actor="U0BOB",
                         channel="C0INCIDENT", message_ts=None)
    _age_heartbeats(control_url, 60)

    assert tracker.beat_and_reap() == []  # its own beat came first
    tracker.finish(live, "done")
    assert _states(control_url) == {live: "finished"}


def test_two_replicas_reaping_at_once_report_each_operation_once(control_url):
    ops = _operations(control_url)
    dead = [_start(ops, "host:4:dead", command=f"/migrate up {i}") for i in range(20)]
    _age_heartbeats(control_url, 60)
    reported: list[int] = []
    lock = threading.Lock()

    def report(record):
        with lock:
            reported.append(record.id)

    trackers = [OperationTracker(PgOperations(control_url), heartbeat_seconds=10, report=report,
                                 owner=f"host:{n}:replica") for n in (5, 6, 7)]
    threads = [threading.Thread(target=t.beat_and_reap) for t in trackers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(reported) == sorted(dead)
