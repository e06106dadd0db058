"""``dbops doctor`` on real PostgreSQL, a real local Slack fake and a real app health endpoint:
one line per check, each failure with its fix, exit 0 only when nothing fails."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.cli.shell import result_text
from commands.results import Outcome
from tests.app_server import AppServer
from tests.slack_fake import FakeSlack

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
         "1_users.down.sql": "DROP TABLE users;",
         "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);",
         "2_orders.down.sql": "DROP TABLE orders;"}
CHECKS = ("database connection", "control database", "client tools", "migration privileges", "snapshot privileges",
          "restore privileges (in-place)", "lock release privileges", "unblock privileges", "snapshot directory",
          "free space", "migration files", "lock directories", "app health check", "app hooks", "Slack token")
HEALTHY = {"status": "pass", "checks": {"migrations": {"status": "pass", "message": "Migrations applied (version 2)",
                                                        "details": {"version": 2, "dirty": False}}}}


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(HEALTHY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def write_config(tmp_path: Path, database_url: str, *, control: str | None = None, **env: object) -> str:
    """A dbops.toml for environment ``test``; ``env`` adds or replaces its keys."""
    keys = {"database_url": database_url, "migrations_dir": str(tmp_path / "migrations"),
            "snapshot_dir": str(tmp_path / "snapshots"), "require_approval": [], **env}
    lines = ([f"[control]\ndatabase_url = {json.dumps(control)}\n"] if control else []) + ["[environments.test]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items() if value is not None]
    path = tmp_path / "dbops.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def doctor(capsys, config: str, *args: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``dbops doctor`` with ``environ`` set (and SLACK_* unset unless given); exit code, output."""
    saved = {k: os.environ.pop(k) for k in ("SLACK_BOT_TOKEN", "SLACK_API_URL") if k in os.environ}
    os.environ.update(environ or {})
    try:
        code = main(["doctor", *args, "--config", config])
    finally:
        for key in environ or {}:
            os.environ.pop(key, None)
        os.environ.update(saved)
    return code, capsys.readouterr().out


LABELS = {"✅": "ok", "⚠️": "WARN", "❌": "FAIL", "➖": "skip"}  # each verdict's mark, as the terminal shows it


def check_lines(out: str) -> dict[str, tuple[str, str]]:
    """Each check's line (``✅ name: detail``) as (label, detail), by name; and its fix under
    ``name + " fix"``. The headline and the closing hint are not checks."""
    found: dict[str, tuple[str, str]] = {}
    last = None
    for line in out.splitlines()[1:]:
        if line.startswith("        Fix: "):
            found[f"{last} fix"] = ("fix", line.removeprefix("        Fix: "))
            continue
        mark, _, rest = line.partition(" ")
        if mark in LABELS:
            last, _, detail = rest.partition(": ")
            found[last] = (LABELS[mark], detail)
    return found


@pytest.fixture
def good(make_bed, control_url, tmp_path, health_url, slack):
    """A superuser's environment where everything is in order; returns (bed, config, Slack's environ)."""
    bed = make_bed(FILES)
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "locks").mkdir()
    config = write_config(tmp_path, bed.url, control=control_url, health_url=health_url,
                          app_pause_url=health_url.replace("/health", "/pause"),
                          app_resume_url=health_url.replace("/health", "/resume"),
                          lock_dirs=[str(tmp_path / "locks" / "togather-migration-test.lock")])
    return bed, config, {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.api_url}


def test_doctor_passes_every_check_as_superuser_on_a_good_config_and_exits_0(good, capsys, slack):
    bed, config, environ = good
    code, out = doctor(capsys, config, environ=environ)

    assert code == 0, out
    assert out.splitlines()[0] == "test: every check passed"
    lines = check_lines(out)
    assert tuple(lines) == CHECKS, out
    assert all(label == "ok" for label, _ in lines.values()), out
    assert lines["database connection"][1].startswith("connected as postgres to ")
    assert lines["restore privileges (in-place)"][1] == "role postgres can restore a snapshot in place (superuser)"
    assert lines["migration files"][1] == f"4 files in {bed.migrations} parse; none skipped"
    assert lines["Slack token"][1] == "auth.test: authenticated as dbops in workspace dbops-test"
    assert [c.method for c in slack.calls] == ["auth.test"]




def lines_of(result) -> dict[str, tuple[str, str]]:
    return check_lines(result_text(result, command="dbops doctor"))


def test_doctor_json_is_one_object_with_every_check_in_order(good, capsys):
    bed, config, _ = good
    code, out = doctor(capsys, config, "test", "--format", "json")

    assert code == 0, out
    result = json.loads(out)
    assert (result["kind"], result["env"], result["outcome"], result["operation"]) == (
        "DoctorResult", "test", "done", "doctor")
    assert [c["name"] for c in result["checks"]] == list(CHECKS)
    assert all(set(c) == {"kind", "name", "verdict", "detail", "fix"} for c in result["checks"])
    assert {c["verdict"] for c in result["checks"][:-1]} == {"pass"}
    assert result["checks"][-1] == {"kind": "DoctorCheck", "name": "Slack token", "verdict": "skip",
                                    "detail": "not configured (SLACK_BOT_TOKEN unset)",
                                    "fix": "Set SLACK_BOT_TOKEN (and SLACK_API_URL, if not Slack's own) to check the "
                                           "bot's token."}


def test_a_token_slack_refuses_fails_its_line_and_is_never_shown(good, capsys, slack):
    bed, config, environ = good
    code, out = doctor(capsys, config, environ={**environ, "SLACK_BOT_TOKEN": "xoxb-not-the-bots-token"})

    assert code == 1
    assert out.splitlines()[0] == "test: doctor found problems: 1 failed, 14 passed"
    lines = check_lines(out)
    assert lines["Slack token"] == ("FAIL", "auth.test: Slack refused the token (invalid_auth)")
    assert lines["Slack token fix"][1].startswith("Set SLACK_BOT_TOKEN to the app's Bot User OAuth Token")
    assert "not-the-bots-token" not in out
    assert [(c.method, c.error) for c in slack.calls] == [("auth.test", "invalid_auth")]


def test_an_unreachable_control_database_fails_its_line_and_the_rest_still_run(good, capsys, tmp_path):
    bed, config, environ = good
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://dbops:s3cret-control@127.0.0.1:{port}/dbops_control"
    text = Path(config).read_text()
    Path(config).write_text(text.replace(text.split("\n")[1], f"database_url = {json.dumps(url)}"))

    code, out = doctor(capsys, config, environ=environ)

    assert code == 1
    lines = check_lines(out)
    label, detail = lines["control database"]
    assert label == "FAIL"
    assert detail.startswith(f"control database: could not connect to postgresql://dbops:****@127.0.0.1:{port}"
                             "/dbops_control: ")
    assert detail.endswith("approvals, the audit log, alerts and schedules live there; until it is back, only "
                           "read-only commands answer")
    assert lines["control database fix"][1].startswith("Check [control] database_url: host, port, database, user")
    assert "s3cret-control" not in out
    assert [label for name, (label, _) in lines.items() if not name.endswith(" fix")].count("ok") == 14


def test_a_migration_file_that_does_not_parse_fails_its_line_naming_file_and_line(good, capsys):
    bed, config, environ = good
    bed.write({"3_broken.up.sql": "CREATE TABLE (id int);", "3_broken.down.sql": "", "README.md": "notes"})

    code, out = doctor(capsys, config, environ=environ)

    assert code == 1
    lines = check_lines(out)
    assert lines["migration files"] == (
        "FAIL", f'1 problem in {bed.migrations}: 3_broken.up.sql line 1: syntax error at or near "("')
    assert lines["migration files fix"][1] == ("Fix the files (/migrate validate test lists every problem); "
                                               "nothing runs a file that does not parse.")


def test_duplicate_versions_and_stray_files_are_named(good, capsys):
    bed, config, environ = good
    bed.write({"README.md": "notes"})
    assert check_lines(doctor(capsys, config, environ=environ)[1])["migration files"] == (
        "WARN", "4 files parse; README.md: skipped: not named VERSION_NAME.up.sql or VERSION_NAME.down.sql")
    bed.write({"01_users.up.sql": "SELECT 1;"})

    code, out = doctor(capsys, config, environ=environ)

    assert code == 1
    assert check_lines(out)["migration files"] == (
        "FAIL", "Duplicate migration: 01_users.up.sql and 1_users.up.sql are both version 1 up. golang-migrate "
                "refuses this directory too; rename or remove one of them.")


@pytest.fixture
def read_only(tmp_path) -> Iterator[Path]:
    """A real read-only file system (root writes anywhere else)."""
    mountpoint = tmp_path / "read-only"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_an_unwritable_snapshot_dir_fails_with_its_fix(make_bed, read_only, tmp_path, capsys):
    bed = make_bed(FILES)
    code, out = doctor(capsys, write_config(tmp_path, bed.url, snapshot_dir=str(read_only)))

    assert code == 1
    lines = check_lines(out)
    assert lines["snapshot directory"] == (
        "FAIL", f"{read_only} is on a read-only file system: every snapshot fails, and with it every migration")
    assert lines["snapshot directory fix"][1] == (
        f"Give the user dbops runs as write access to {read_only} (on a read-write file system), or change "
        "snapshot_dir under [environments.test].")


def test_a_missing_snapshot_dir_fails_when_it_cannot_be_made_and_warns_when_it_can(make_bed, read_only, tmp_path,
                                                                                   capsys):
    bed = make_bed(FILES)
    cannot = read_only / "snapshots"
    code, out = doctor(capsys, write_config(tmp_path, bed.url, snapshot_dir=str(cannot)))
    assert code == 1
    lines = check_lines(out)
    assert lines["snapshot directory"] == (
        "FAIL", f"{cannot} does not exist and cannot be made: {read_only} is on a read-only file system")
    assert lines["snapshot directory fix"][1].startswith(f"mkdir -p {cannot} and give the user dbops runs as write")

    can = tmp_path / "not-yet" / "snapshots"
    code, out = doctor(capsys, write_config(tmp_path, bed.url, snapshot_dir=str(can)))
    assert code == 0
    assert check_lines(out)["snapshot directory"] == (
        "WARN", f"{can} does not exist yet; the first snapshot makes it, on the file system of {tmp_path} (if it "
                "should be a mounted volume, it is not mounted)")
    assert not (tmp_path / "not-yet").exists()  # the doctor only looks


def test_a_snapshot_that_cannot_fit_fails_the_free_space_line(make_bed, small_filesystem, tmp_path, capsys):
    bed = make_bed(FILES)
    bed.run("migrate up")
    bed.execute("INSERT INTO users (email) SELECT md5(i::text) || md5(i::text) FROM generate_series(1, 100000) i")

    code, out = doctor(capsys, write_config(tmp_path, bed.url, snapshot_dir=str(small_filesystem)))

    assert code == 1
    label, detail = check_lines(out)["free space"]
    assert label == "FAIL"
    assert re.match(rf"2[0-9.]+ KB free in {small_filesystem}; the database is [0-9.]+ MB, 1[0-9.]+ MB of it table "
                    "data", detail), detail
    assert detail.endswith("(what a snapshot holds, before zstd): a snapshot will not fit, and every migration takes "
                           "one first")
    assert check_lines(out)["free space fix"][1] == (
        f"Free space (/snapshot cleanup test deletes old snapshots) or give {small_filesystem} more room.")


def test_a_lock_dir_whose_parent_is_missing_fails_and_a_dead_app_health_check_fails(make_bed, tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    lock = tmp_path / "no-such-dir" / "migration.lock"
    bed = make_bed(FILES, lock_dirs=[str(lock)], health_url=f"http://127.0.0.1:{port}/health")

    lines = lines_of(bed.run("dbops doctor"))

    assert lines["lock directories"] == ("FAIL", f"{lock} cannot be taken: {lock.parent} does not exist, so every "
                                                 "migration fails")
    label, detail = lines["app health check"]
    assert label == "FAIL" and detail.startswith(f"Could not reach http://127.0.0.1:{port}/health: ")
    assert lines["app health check fix"][1].startswith("Check health_url under [environments.test]")


# --- the application's pause and resume hooks -----------------------------------------------------------

TOKEN = "dpl-doctor-secret-token"


def test_doctor_checks_the_hooks_by_connecting_without_calling_them_so_nothing_is_paused(make_bed):
    with AppServer() as app:
        bed = make_bed(FILES, app_pause_url=app.url("/pause") + "?key=query-secret", app_resume_url=app.url("/resume"),
                       health_url=app.url("/health"), app_health_wait_seconds=60,
                       app_hook_headers={"Authorization": "Bearer ${DEPLOY_TOKEN}", "X-Deploy-Env": "test"},
                       environ={"DEPLOY_TOKEN": TOKEN})
        result = bed.run("dbops doctor")
        called = list(app.calls)

    # The health check is read, as ever; the hooks got a TCP connection each and no request: the application
    # was neither paused nor resumed.
    assert [(c.method, c.path) for c in called] == [("GET", "/health")]
    text = result_text(result, command="dbops doctor")
    assert lines_of(result)["app hooks"] == ("ok", (
        f"pause POST {app.url('/pause')}?… and resume POST {app.url('/resume')} (not called: a doctor never pauses "
        "the application; it only opens a connection, sending no request); headers Authorization (from ${DEPLOY_TOKEN}), "
        "X-Deploy-Env; health_url awaited up to 60 s after the resume"))
    assert "app hooks fix" not in lines_of(result)
    assert TOKEN not in text and "query-secret" not in text and "Bearer" not in text


def test_doctor_fails_the_hooks_when_a_hook_cannot_be_reached_or_a_header_variable_is_empty(make_bed):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with AppServer() as app:
        bed = make_bed(FILES, app_pause_url=app.url("/pause").replace("http://", "https://"),
                       app_resume_url=f"http://127.0.0.1:{port}/resume", health_url=app.url("/health"),
                       app_hook_headers={"Authorization": "Bearer ${DEPLOY_TOKEN}"}, environ={"DEPLOY_TOKEN": ""})
        result = bed.run("dbops doctor")
        called = list(app.calls)

    assert [c.path for c in called] == ["/health"] and result.outcome is Outcome.FAILED
    label, detail = lines_of(result)["app hooks"]
    assert label == "FAIL"
    assert detail.startswith(f"the pause hook POST https://127.0.0.1:{app.port}/pause: the TLS handshake with "
                             f"127.0.0.1:{app.port} failed: ")  # an https URL whose server speaks plain http
    assert (f"; the resume hook POST http://127.0.0.1:{port}/resume: could not connect to 127.0.0.1:{port}: "
            "Connection refused; the variable DEPLOY_TOKEN (for the Authorization header) is empty in dbops' "
            "environment; ") in detail
    fix = lines_of(result)["app hooks fix"][1]
    assert ("Check app_pause_url under [environments.test] and that dbops' host may connect to it: until it does, "
            "every restore and rollback is refused before it changes anything.") in fix
    assert "Set DEPLOY_TOKEN in the environment dbops runs in, then restart dbops." in fix


def test_doctor_warns_of_a_missing_resume_hook_or_health_url_and_a_credential_written_in_the_file(make_bed):
    with AppServer() as app:
        bed = make_bed(FILES, app_pause_url=app.url("/pause"), app_hook_method="PUT",
                       app_hook_headers={"Authorization": "Bearer written-in-the-file"})
        result = bed.run("dbops doctor")
        called = list(app.calls)

    assert called == []
    label, detail = lines_of(result)["app hooks"]
    assert label == "WARN"
    assert detail == ("no app_resume_url: after a restore or rollback the application stays stopped until someone "
                      "starts it; Authorization written into the configuration file, not taken from the environment; "
                      f"pause PUT {app.url('/pause')} (not called: a doctor never pauses the application; it only "
                      "opens a connection, sending no request); headers Authorization")
    assert "written-in-the-file" not in result_text(result, command="dbops doctor")
    assert lines_of(result)["app hooks fix"][1] == (
        "Set app_resume_url under [environments.test], or start the application by hand after each restore. "
        'Take credentials from the environment: { Authorization = "Bearer ${DEPLOY_TOKEN}" }.')


def test_doctor_skips_the_hooks_when_none_are_configured(make_bed):
    assert lines_of(make_bed(FILES).run("dbops doctor"))["app hooks"] == (
        "skip", "not configured (app_pause_url, app_resume_url): a restore or rollback does not stop the application; "
                "stop its writes by hand")


# --- Slack ----------------------------------------------------------------------------------------------

def test_slash_dbops_doctor_answers_privately_with_one_row_per_check(make_bed, control_url):
    from tests.slack_bed import serving, text_of
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        with serving(bed, fake, control_url) as scenario:
            status, ack, url = scenario.command("doctor test", command="/dbops")
            assert status == 200 and ack == ""
            reply = scenario.reply(url)
            audit = scenario.audit()

    assert reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    assert reply["blocks"][0]["text"]["text"] == "*test*: no check failed: 1 warning, 11 passed, 3 skipped"
    assert ":white_check_mark: *Slack token*: auth.test: authenticated as dbops in workspace dbops-test" in shown
    assert ":warning: *snapshot directory*:" in shown and "_Fix:_ mkdir -p" in shown
    assert all(f"*{name}*" in shown for name in CHECKS)
    assert fake.calls_to("chat.postMessage") == []
    assert ("U0ALICE", "C0INCIDENT", "dbops doctor", "done") in audit
