"""The two-person rule, through the executor every surface uses, on real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from slack_sdk import WebClient

from bot.jobs.watchers import ApprovalSweeper
from commands import grammar
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.policy import Policy
from commands.approval.results import ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalsResult
from commands.results import Outcome, Reason
from tests.conftest import wait_for

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_email_index.up.sql": "CREATE INDEX users_email ON users (email);",
    "3_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);",
    "3_orders.down.sql": "-- keep the history\nDELETE FROM orders;\nDROP TABLE orders;",
}


class Groups:
    """User groups as a directory answers them (contract: commands.policy.Directory)."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        self.groups = groups

    def members(self, group: str) -> frozenset[str]:
        return frozenset(self.groups.get(group, ()))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def replica(bed, control_url: str, clock) -> Executor:
    """One dbops process on the shared control database, with its own (maybe skewed) clock."""
    return Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                    audit=PgAuditLog(control_url), approvals=PgApprovals(control_url),
                    policy=Policy(Groups({"S0DBAS": {"U0DAVE"}})), clock=clock)


def make_desk(make_bed, control_url, *, ttl: int):
    bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB", "S0DBAS"],
                   require_approval=["down", "goto", "force", "restore", "cleanup"], approval_ttl_seconds=ttl)
    migrate_control_database(control_url)
    bed.clock = Clock()
    bed.executor = replica(bed, control_url, bed.clock)
    bed.control_url = control_url
    bed.run("migrate up")  # require_approval does not list up
    assert bed.state() == (3, False)
    return bed


@pytest.fixture
def desk(make_bed, control_url):
    return make_desk(make_bed, control_url, ttl=900)


@pytest.fixture
def brief_desk(make_bed, control_url):
    """Requests live one second, so that the control database's own clock runs them out."""
    return make_desk(make_bed, control_url, ttl=1)


def database_now_is_past(bed, request_id: str) -> bool:
    with psycopg.connect(bed.control_url) as conn:
        past = conn.execute("SELECT now() >= expires_at FROM dbops_approvals WHERE id = %s", (request_id,))
        return past.fetchone()[0]


def stored_times(bed, request_id: str) -> tuple[timedelta, timedelta]:
    """How far the stored created_at is from the control database's now(), and the time to live."""
    with psycopg.connect(bed.control_url) as conn:
        return conn.execute("SELECT abs(extract(epoch FROM now() - created_at)) * interval '1 second', "
                            "expires_at - created_at FROM dbops_approvals WHERE id = %s", (request_id,)).fetchone()


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


def request_down(bed) -> str:
    needed = ask(bed, "migrate down 2")
    assert isinstance(needed, ApprovalNeeded) and needed.outcome is Outcome.AWAITING_APPROVAL
    assert bed.state() == (3, False)  # nothing ran
    return needed.request.id


def test_a_destructive_command_becomes_a_request_with_its_impact(desk):
    needed = ask(desk, "migrate down 2")

    request = needed.request
    assert request.command == "migrate down 2 test" and request.requester == "U0ALICE" and request.state == "pending"
    assert request.expires_at - request.created_at == timedelta(seconds=900)
    impact = request.impact
    assert [m.name for m in impact.reverts] == ["orders", "email_index"] and impact.target == 1
    assert [(s.filename, s.line) for s in impact.data_loss] == [("3_orders.down.sql", 2), ("3_orders.down.sql", 3)]
    assert impact.missing_down == (2,)
    pending = ask(desk, "dbops approvals")
    assert isinstance(pending, ApprovalsResult) and [r.id for r in pending.pending] == [request.id]


def test_requester_cannot_approve_own_request(desk):
    request_id = request_down(desk)

    refused = ask(desk, f"dbops approve {request_id}", user="U0ALICE")

    assert isinstance(refused, ApprovalRefused) and refused.reason is Reason.SELF_APPROVAL
    assert desk.state() == (3, False)


def test_only_approvers_approve_directly_or_through_a_group(desk):
    request_id = request_down(desk)

    assert ask(desk, f"dbops approve {request_id}", user="U0CAROL").reason is Reason.NOT_APPROVER
    approved = ask(desk, f"dbops approve {request_id}", user="U0DAVE")  # in S0DBAS

    assert isinstance(approved, ApprovalDecided) and approved.request.state == "executed"
    assert approved.request.decided_by == "U0DAVE" and approved.result.outcome is Outcome.DONE
    assert desk.state() == (1, False)


def test_an_expired_request_cannot_be_approved(brief_desk):
    request_id = request_down(brief_desk)
    wait_for(lambda: database_now_is_past(brief_desk, request_id), what="the request's second to pass")

    refused = ask(brief_desk, f"dbops approve {request_id}", user="U0BOB")

    assert refused.reason is Reason.EXPIRED and refused.request.state == "expired"
    assert brief_desk.state() == (3, False)
    assert ask(brief_desk, "dbops approvals").pending == ()


def test_a_request_from_a_replica_whose_clock_is_years_behind_lives_its_time_by_the_databases_clock(desk):
    behind = replica(desk, desk.control_url, lambda: datetime(2001, 1, 1, tzinfo=timezone.utc))
    ahead = replica(desk, desk.control_url, lambda: datetime(2099, 1, 1, tzinfo=timezone.utc))
    needed = behind.run(grammar.parse("migrate down 2"), Actor(user="U0ALICE", channel="C0INCIDENT", surface="slack"))

    since_created, ttl = stored_times(desk, needed.request.id)
    assert since_created < timedelta(minutes=1) and ttl == timedelta(seconds=900)
    assert needed.request.expires_at - needed.request.created_at == timedelta(seconds=900)
    listed = ahead.run(grammar.parse("dbops approvals"), Actor(user="U0BOB", channel="C0INCIDENT", surface="slack"))
    assert [r.id for r in listed.pending] == [needed.request.id]
    approved = ahead.run(grammar.parse(f"dbops approve {needed.request.id}"),
                         Actor(user="U0BOB", channel="C0INCIDENT", surface="slack"))

    assert isinstance(approved, ApprovalDecided) and approved.request.state == "executed"
    assert desk.state() == (1, False)


def test_a_request_from_a_replica_whose_clock_is_years_ahead_still_expires_by_the_databases_clock(brief_desk):
    ahead = replica(brief_desk, brief_desk.control_url, lambda: datetime(2099, 1, 1, tzinfo=timezone.utc))
    behind = replica(brief_desk, brief_desk.control_url, lambda: datetime(2001, 1, 1, tzinfo=timezone.utc))
    slack = Actor(user="U0ALICE", channel="C0INCIDENT", surface="slack")
    first, second = (ahead.run(grammar.parse("migrate down 2"), slack).request.id for _ in range(2))
    wait_for(lambda: database_now_is_past(brief_desk, second), what="the requests' second to pass")

    refused = behind.run(grammar.parse(f"dbops approve {first}"), Actor(user="U0BOB", channel="C0INCIDENT",
                                                                        surface="slack"))
    # The expiry sweeper of a replica whose clock is behind closes the other one all the same.
    swept = ApprovalSweeper(WebClient(token="xoxb-unused"), PgApprovals(brief_desk.control_url),
                            now=lambda: datetime(2001, 1, 1, tzinfo=timezone.utc)).sweep()

    assert refused.reason is Reason.EXPIRED and refused.request.state == "expired"
    assert swept == [second]
    listed = behind.run(grammar.parse("dbops approvals"), Actor(user="U0BOB", channel="C0INCIDENT", surface="slack"))
    assert listed.pending == ()
    assert brief_desk.state() == (3, False)


def test_an_approval_is_void_when_the_state_changed_since_the_request(desk):
    request_id = request_down(desk)
    # Meanwhile a deploy script's `migrate down 1` moved the database on (3 -> 2).
    desk.execute("DROP TABLE orders; UPDATE schema_migrations SET version = 2")

    refused = ask(desk, f"dbops approve {request_id}", user="U0BOB")

    assert refused.reason is Reason.STATE_CHANGED and refused.request.state == "void"
    assert "was at 3" in refused.detail and "now it is at 2" in refused.detail
    assert desk.state() == (2, False)  # the approved down 2 did not run against the new state


def test_concurrent_approvals_execute_the_operation_exactly_once(desk):
    request_id = request_down(desk)
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(6)

    def approve(user):
        barrier.wait()
        result = ask(desk, f"dbops approve {request_id}", user=user)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=approve, args=(u,)) for u in ["U0BOB", "U0DAVE"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    executed = [r for r in results if isinstance(r, ApprovalDecided)]
    assert len(executed) == 1 and len(results) == 6
    assert {r.reason for r in results if isinstance(r, ApprovalRefused)} == {Reason.DECIDED}
    assert desk.state() == (1, False)
    with psycopg.connect(desk.control_url) as conn:
        runs = conn.execute("SELECT count(*) FROM dbops_audit_log WHERE command = 'migrate down' AND outcome = 'done'")
        assert runs.fetchone() == (1,)


def test_deny_takes_a_reason_and_ends_the_request(desk):
    request_id = request_down(desk)

    denied = ask(desk, f'dbops deny {request_id} --reason "restore the snapshot instead"', user="U0BOB")

    assert isinstance(denied, ApprovalDecided) and denied.request.state == "denied"
    assert denied.request.reason == "restore the snapshot instead" and denied.request.decided_by == "U0BOB"
    assert ask(desk, f"dbops approve {request_id}", user="U0DAVE").reason is Reason.DECIDED
    assert desk.state() == (3, False)
    with pytest.raises(grammar.UsageError, match="needs a reason"):
        grammar.parse(f"dbops deny {request_id}")


def test_only_the_requester_cancels(desk):
    request_id = request_down(desk)

    assert ask(desk, f"dbops cancel {request_id}", user="U0BOB").reason is Reason.NOT_REQUESTER
    cancelled = ask(desk, f"dbops cancel {request_id}", user="U0ALICE")

    assert cancelled.request.state == "cancelled"
    assert ask(desk, f"dbops approve {request_id}", user="U0BOB").reason is Reason.DECIDED


def test_every_request_decision_and_execution_is_audited(desk):
    request_id = request_down(desk)
    ask(desk, f"dbops approve {request_id}", user="U0BOB")

    with psycopg.connect(desk.control_url) as conn:
        rows = conn.execute("SELECT actor, command, outcome FROM dbops_audit_log WHERE command <> 'migrate up' "
                            "ORDER BY id").fetchall()
    assert rows == [("U0ALICE", "migrate down", "awaiting_approval"), ("U0ALICE", "migrate down", "done"),
                    ("U0BOB", "dbops approve", "done")]


def test_an_unknown_request_and_a_malformed_id_are_refused(desk):
    assert ask(desk, "dbops approve r0000000000", user="U0BOB").reason is Reason.UNKNOWN_REQUEST
    with pytest.raises(grammar.UsageError, match="not a request id"):
        grammar.parse("dbops approve ../../etc")
