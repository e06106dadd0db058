"""The application's pause and resume hooks around a restore and a rollback, on real PostgreSQL
against a real local HTTP server that records each call (``tests/app_server.py``).

At the moment the pause hook is called the database is still untouched (and no safety snapshot
is taken yet); the resume hook comes after the change, and the health check after the resume.
A pause that fails changes nothing; a restore that fails is still followed by the resume."""

from __future__ import annotations

import json
import socket

import psycopg
import pytest
from structlog.testing import capture_logs

from bot.cli.outcome import fault_text, result_json
from bot.cli.shell import result_text
from commands.config import parse_settings
from commands.errors import SnapshotFailed
from commands.executor import Executor
from commands.pg.control import PgAuditLog, PgRollbackLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.redact import redact
from commands.results import Outcome, Reason, Refusal
from commands.rollback.results import RollbackResult
from commands.snapshot.results import RestoreResult
from tests.app_server import HEALTHY, STARTING, AppServer, Answer

TOKEN = "dpl-7Qx9-very-secret-token"
FILES = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY, email text);",
         "1_users.down.sql": "DROP TABLE users;",
         "2_orders.up.sql": "CREATE TABLE orders (id int PRIMARY KEY);",
         "2_orders.down.sql": "DROP TABLE orders;"}


@pytest.fixture
def app():
    with AppServer() as server:
        server.answers = {"/pause": Answer(200, "paused"), "/resume": Answer(200, "resumed"),
                          "/health": Answer(200, HEALTHY)}
        yield server


def hooked_bed(make_bed, app: AppServer, **env):
    keys = dict(app_pause_url=app.url("/pause"), app_resume_url=app.url("/resume"), health_url=app.url("/health"),
                app_hook_headers={"Authorization": "Bearer ${DEPLOY_TOKEN}", "X-Deploy-Env": "test"},
                app_health_wait_seconds=30, app_hook_timeout_seconds=5)
    bed = make_bed(FILES, environ={"DEPLOY_TOKEN": TOKEN}, **{**keys, **env})
    assert bed.run("migrate up").outcome in (Outcome.DONE, Outcome.NO_CHANGE)  # a second bed: the same database
    return bed


def users(bed) -> list[tuple]:
    return bed.query("SELECT id, email FROM users ORDER BY id")


def snapshots(bed) -> set[str]:
    directory = bed.settings.environment("test").snapshot_dir
    return {p.name for p in directory.iterdir() if p.name.endswith(".dump.zst")} if directory.exists() else set()


def snapshot_before_the_write(bed) -> str:
    """A snapshot with one user; then a second user is written after it (what a restore loses)."""
    bed.execute("INSERT INTO users VALUES (1, 'ada@example.com')")
    taken = bed.run('snapshot create --reason "before the bad deploy"')
    bed.execute("INSERT INTO users VALUES (2, 'written-after@example.com')")
    return taken.snapshot.name


def test_a_restore_pauses_the_application_before_the_database_changes_then_resumes_and_awaits_health(make_bed, app):
    bed = hooked_bed(make_bed, app)
    name = snapshot_before_the_write(bed)
    app.callbacks = {"/pause": lambda: (users(bed), snapshots(bed)), "/resume": lambda: users(bed)}
    app.answers["/health"] = [Answer(503, STARTING), Answer(503, STARTING), Answer(200, HEALTHY)]
    taken_before = snapshots(bed)

    with capture_logs() as logs:
        result = bed.run(f"snapshot restore {name}")

    assert isinstance(result, RestoreResult) and result.outcome is Outcome.DONE
    assert app.paths() == ["/pause", "/resume", "/health", "/health", "/health"]
    pause, resume = app.called("/pause")[0], app.called("/resume")[0]
    # At the pause the database was untouched and the safety snapshot not yet taken (it holds the last write).
    assert pause.seen == ([(1, "ada@example.com"), (2, "written-after@example.com")], taken_before)
    assert resume.seen == [(1, "ada@example.com")]  # the resume came after the restore
    assert len(snapshots(bed)) == len(taken_before) + 1
    assert pause.method == "POST" and pause.body == {"hook": "pause", "environment": "test",
                                                     "operation": "snapshot restore", "requested_by": "alice"}
    assert pause.headers["Authorization"] == f"Bearer {TOKEN}" and pause.headers["X-Deploy-Env"] == "test"
    assert resume.headers["Authorization"] == f"Bearer {TOKEN}" and resume.body["hook"] == "resume"

    hooks = result.app_hooks
    assert hooks.paused.done and hooks.resumed.done and not hooks.change_failed
    assert hooks.health.passed and hooks.health.waited_ms >= 1000  # two failing reads, a second apart
    shown = result_text(result, command=f"snapshot restore {name}")
    assert f"✅ Application stopped: the pause hook `POST {app.url('/pause')}` answered HTTP 200" in shown
    assert f"✅ Application restarted: the resume hook `POST {app.url('/resume')}` answered HTTP 200" in shown
    assert "✅ Health check passed" in shown and "(after waiting " in shown
    said = shown + result_json(result, 0) + json.dumps([str(e) for e in logs]) + repr(bed.settings)
    assert TOKEN not in said and "Bearer" not in said
    assert [e["hook"] for e in logs if e["event"] == "app_hook.called"] == ["pause", "resume"]


@pytest.mark.parametrize("failure", ["503", "timeout", "unreachable"])
def test_a_failing_pause_hook_refuses_the_restore_and_leaves_the_database_untouched(make_bed, app, failure):
    pause_url = app.url("/pause")
    if failure == "unreachable":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            pause_url = f"http://127.0.0.1:{probe.getsockname()[1]}/pause"
    bed = hooked_bed(make_bed, app, app_pause_url=pause_url, app_hook_timeout_seconds=0.5)
    name = snapshot_before_the_write(bed)
    before, taken_before = users(bed), snapshots(bed)
    app.answers["/pause"] = (Answer(503, "deploy in progress, try again later") if failure == "503" else
                             Answer(200, "too late", delay=3))

    refused = bed.run(f"snapshot restore {name}")

    assert isinstance(refused, Refusal) and refused.reason is Reason.APP_NOT_PAUSED
    assert users(bed) == before and snapshots(bed) == taken_before  # nothing changed, no snapshot taken
    assert app.paths()[-1] == "/resume" and "/health" not in app.paths()  # resumed in case it half-stopped
    shown = result_text(refused, command=f"snapshot restore {name}")
    assert "refused: the application's pause hook did not answer 2xx" in shown
    assert "Nothing was changed: the lock was released and no snapshot was taken." in shown
    expected = {"503": "answered HTTP 503: 'deploy in progress, try again later'", "timeout": "timed out",
                "unreachable": "Could not reach"}[failure]
    assert expected in shown
    # The lock was released: with the hook answering again, the same restore runs.
    app.answers["/pause"] = Answer(200, "paused")
    if failure == "unreachable":
        bed = hooked_bed(make_bed, app)
    assert isinstance(bed.run(f"snapshot restore {name}"), RestoreResult)
    assert users(bed) == [(1, "ada@example.com")]


def test_the_history_shows_what_the_hooks_answered_for_a_refused_and_a_done_rollback(make_bed, app, control_url):
    bed = hooked_bed(make_bed, app, app_resume_url=app.url("/resume") + "?key=query-secret")
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), rollback_log=PgRollbackLog(control_url))
    app.answers["/pause"] = Answer(503, f"deploy in progress (token {TOKEN})")

    refused = bed.run('rollback --steps 1 --reason "orders page broke"')

    assert isinstance(refused, Refusal) and refused.reason is Reason.APP_NOT_PAUSED and bed.state() == (2, False)
    history = result_text(bed.run("dbops history"), command="dbops history")
    assert "`rollback steps=1 reason=orders page broke` on test → refused · " in history
    assert (f"the pause hook POST {app.url('/pause')} answered HTTP 503: 'deploy in progress (token ****)'; the "
            f"resume hook POST {app.url('/resume')}?… answered HTTP 200") in history
    assert TOKEN not in history and "query-secret" not in history
    with psycopg.connect(control_url) as conn:
        assert conn.execute("SELECT count(*) FROM dbops_rollbacks").fetchone() == (0,)  # nothing was rolled back

    app.answers["/pause"] = Answer(200, "paused")
    assert bed.run('rollback --steps 1 --reason "orders page broke"').outcome is Outcome.DONE
    newest = result_text(bed.run("dbops history"), command="dbops history").split("Newest first:\n")[1].split("\n2")[0]
    assert "→ done" in newest and (f"the pause hook POST {app.url('/pause')} answered HTTP 200; the resume hook POST "
                                   f"{app.url('/resume')}?… answered HTTP 200") in newest


def test_the_resume_hook_is_called_after_a_restore_that_failed_and_the_fault_says_so(make_bed, app):
    bed = hooked_bed(make_bed, app, lock_timeout="500ms")
    name = snapshot_before_the_write(bed)
    before = users(bed)
    # The application did not really stop: it still holds a lock the restore needs, so the restore fails.
    blocker = psycopg.connect(bed.url)

    def still_writing():
        blocker.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
        return users(bed)

    app.callbacks = {"/pause": still_writing, "/resume": blocker.rollback}
    try:
        with pytest.raises(SnapshotFailed) as failed:
            bed.run(f"snapshot restore {name}")
    finally:
        blocker.close()
    assert app.paths() == ["/pause", "/resume"]
    assert users(bed) == before  # the restore was rolled back
    message = fault_text(failed.value, command=f"snapshot restore {name}")
    assert "failed and was rolled back" in message
    assert f"The application's resume hook (POST {app.url('/resume')}) was called afterwards: HTTP 200." in message
    assert TOKEN not in message


def test_a_rollback_pauses_before_the_down_file_runs_and_ticks_the_checklist(make_bed, app):
    bed = hooked_bed(make_bed, app)
    app.callbacks = {"/pause": lambda: (bed.state(), bed.tables()), "/resume": lambda: (bed.state(), bed.tables())}

    result = bed.run('rollback --steps 1 --reason "orders page broke"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE
    assert app.paths() == ["/pause", "/resume", "/health"]
    assert app.called("/pause")[0].seen == ((2, False), {"users", "orders"})
    assert app.called("/resume")[0].seen == ((1, False), {"users"})
    assert app.called("/pause")[0].body["operation"] == "rollback"
    shown = result_text(result, command='rollback --steps 1 --reason "orders page broke"')
    assert f"✅ Application stopped: the pause hook `POST {app.url('/pause')}` answered HTTP 200" in shown
    assert f"✅ Application restarted: the resume hook `POST {app.url('/resume')}` answered HTTP 200" in shown
    assert "✅ Health check passed" in shown


def test_the_rollback_log_keeps_each_hook_call_and_its_answer_but_never_the_token_query_or_password(
        make_bed, app, control_url):
    bed = hooked_bed(make_bed, app, app_pause_url=app.url("/pause") + "?key=query-secret",
                     app_resume_url=app.url("/resume").replace("http://", "http://ops:url-password@"))
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            rollback_log=PgRollbackLog(control_url))
    app.answers["/resume"] = Answer(503, f"scaling up, try later (token {TOKEN})")

    result = bed.run('rollback --steps 1 --reason "orders page broke"')

    assert isinstance(result, RollbackResult) and result.recorded and bed.state() == (1, False)
    with psycopg.connect(control_url) as conn:
        (checks, row), = conn.execute("SELECT checks, r::text FROM dbops_rollbacks r").fetchall()
    hooks = checks["app_hooks"]
    assert isinstance(hooks["pause"].pop("latency_ms"), int) and isinstance(hooks["resume"].pop("latency_ms"), int)
    assert hooks == {
        "pause": {"hook": "pause", "method": "POST", "url": app.url("/pause") + "?…", "done": True,
                  "http_status": 200, "answer": "HTTP 200"},
        "resume": {"hook": "resume", "method": "POST", "url": app.url("/resume").replace("http://", "http://ops:****@"),
                   "done": False, "http_status": 503, "answer": "HTTP 503: 'scaling up, try later (token ****)'"},
        "change_failed": False}
    assert checks["app_health"]["passed"] and checks["app_health"]["url"] == app.url("/health")
    # The hooks were really called with the secrets; none of them reached the log.
    assert app.called("/pause")[0].path.endswith("?key=query-secret")
    assert app.called("/resume")[0].headers["Authorization"] == f"Bearer {TOKEN}"
    for secret in (TOKEN, "Bearer", "query-secret", "url-password", "Authorization", "X-Deploy-Env"):
        assert secret not in row


def test_the_rollback_options_at_a_terminal_say_the_hooks_pause_and_resume_the_application_and_call_nothing(
        make_bed, app):
    bed = hooked_bed(make_bed, app)

    shown = result_text(bed.run("rollback"), command="rollback")

    assert app.calls == []  # planning calls no hook
    assert ("The application's hooks (around each option that says so):\nThe application is paused first: once the "
            f"lock is taken, dbops calls `POST {app.url('/pause')}` and changes nothing unless it answers 2xx.") in shown
    down = shown[shown.index("1. Run the down file of `2_orders`"):]
    assert "Pauses the application first and resumes it after, through its hooks (above)." in down


def test_a_rollback_whose_down_file_fails_still_resumes_the_application(make_bed, app):
    bed = hooked_bed(make_bed, app)
    bed.write({"2_orders.down.sql": "DROP TABLE no_such_table;"})

    result = bed.run('rollback --steps 1 --reason "orders page broke"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.FAILED
    assert app.paths()[:2] == ["/pause", "/resume"] and result.app_hooks.change_failed
    assert bed.state() == (2, False) and "orders" in bed.tables()
    shown = result_text(result, command='rollback --steps 1 --reason "orders page broke"')
    assert "✅ Application restarted after the failed change: the resume hook" in shown


def test_a_rollback_refused_for_a_held_lock_never_stops_the_application(make_bed, app):
    bed = hooked_bed(make_bed, app)
    with bed.executor.databases.open(bed.settings.environment("test")) as db:  # another migrator's session
        assert db.lock.acquire(1) is None
        result = bed.run('rollback --steps 1 --reason "orders page broke"')
    assert isinstance(result, Refusal) and result.reason is Reason.LOCK_HELD
    assert app.paths() == [] and bed.state() == (2, False)


def test_a_hook_that_echoes_the_token_back_has_it_masked_in_what_dbops_shows(make_bed, app):
    app.answers["/pause"] = Answer(401, f"token Bearer {TOKEN} is revoked")
    bed = hooked_bed(make_bed, app)
    name = snapshot_before_the_write(bed)

    refused = bed.run(f"snapshot restore {name}")

    shown = result_text(refused, command=f"snapshot restore {name}")
    assert "answered HTTP 401: 'token ****" in shown and TOKEN not in shown + result_json(refused, 3)


def test_a_redirect_to_another_host_is_not_followed_with_the_token(make_bed, app):
    other = app.url("/elsewhere", host="localhost")
    app.answers["/pause"] = Answer(307, "", headers={"Location": other})
    bed = hooked_bed(make_bed, app)
    name = snapshot_before_the_write(bed)

    refused = bed.run(f"snapshot restore {name}")

    assert isinstance(refused, Refusal) and refused.reason is Reason.APP_NOT_PAUSED
    assert "/elsewhere" not in app.paths()
    assert "only a redirect to the same host" in refused.app_hooks.paused.message


def test_credential_headers_and_environment_values_are_masked_but_a_plain_header_value_is_not(tmp_path):
    document = {"environments": {"masking": {
        "database_url": "postgresql://dbops@db.example.com/app", "migrations_dir": str(tmp_path),
        "pre_migration_snapshot": False, "require_approval": [], "app_pause_url": "https://deploy.example.com/pause",
        "app_hook_headers": {"Authorization": "Bearer ${MASKING_TOKEN}", "X-Api-Key": "key-written-in-the-file",
                             "X-Deploy-Env": "blue-fleet"}}}}
    parse_settings(document, source="test", base_dir=tmp_path, environ={"MASKING_TOKEN": "tok-from-the-env"})

    assert redact("tok-from-the-env / key-written-in-the-file") == "**** / ****"
    # A plain value is no secret: masking it would mask the same word in every message.
    assert redact("deploying to blue-fleet") == "deploying to blue-fleet"
