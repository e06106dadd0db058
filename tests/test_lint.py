"""/migrate plan and the lint gate: dbops' rules, squawk's findings, allowances, and ``up``
turned into a request by blocking findings, on real PostgreSQL and the real squawk binary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli.main import main
from commands import grammar
from commands.lint import lint
from commands.pg import squawk
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.approval.results import ApprovalNeeded
from commands.migrate.results import MigrateResult
from commands.results import Outcome
from commands.lint.results import PlanResult
from commands.sql.sqlscan import scan
from commands.pg.squawk import SquawkLinter

BASE = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text, age text);",
        "1_users.down.sql": "DROP TABLE users;"}


def rules_of(up: str, down: str | None = "SELECT 1;", *, sizes: dict[str, int] | None = None,
             large_mb: int = 100) -> list[str]:
    return [f.rule for f in lint.lint_migration(up_name="2_x.up.sql", up=scan(up),
                                                down_name="2_x.down.sql" if down is not None else None,
                                                down=scan(down) if down is not None else None,
                                                sizes=sizes or {}, large_mb=large_mb)]


# --- dbops' rules, each positive and negative ---------------------------------------------------

@pytest.mark.parametrize(("rule", "risky", "safe"), [
    ("drop-column", "ALTER TABLE users DROP COLUMN age;", "ALTER TABLE users ADD COLUMN status text DEFAULT 'a';"),
    ("rename-table", "ALTER TABLE users RENAME TO accounts;", "CREATE TABLE accounts AS SELECT * FROM users;"),
    ("rename-column", "ALTER TABLE users RENAME COLUMN email TO mail;", "ALTER TABLE users ADD COLUMN mail text;"),
    ("change-column-type", "ALTER TABLE users ALTER COLUMN age TYPE integer USING age::integer;",
     "ALTER TABLE users ADD COLUMN age_int integer;"),
    ("not-null-without-default", "ALTER TABLE users ADD COLUMN status text NOT NULL;",
     "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active';"),
    ("not-null-without-default", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
     "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN x int NOT NULL;"),
    ("mixed-transaction", "CREATE INDEX CONCURRENTLY users_email ON users (email);\nSELECT 1;",
     "CREATE INDEX CONCURRENTLY users_email ON users (email);"),
])
def test_each_guide_pattern_is_found_and_its_safe_form_is_not(rule: str, risky: str, safe: str) -> None:
    assert rule in rules_of(risky)
    assert rule not in rules_of(safe)


def test_missing_down_and_down_that_loses_data() -> None:
    assert "missing-down" in rules_of("CREATE TABLE t (id int);", down=None)
    assert "missing-down" not in rules_of("CREATE TABLE t (id int);", down="DROP TABLE t;")
    assert "down-loses-data" in rules_of("ALTER TABLE t ADD COLUMN c int;", down="ALTER TABLE t DROP COLUMN c;")
    assert "down-loses-data" not in rules_of("CREATE INDEX CONCURRENTLY i ON t (c);",
                                             down="DROP INDEX CONCURRENTLY i;")


def test_index_rule_needs_a_large_table() -> None:
    up = "CREATE INDEX users_email ON users (email);"
    assert "index-without-concurrently-on-large-table" in rules_of(up, sizes={"users": 200 * lint.MB})
    assert "index-without-concurrently-on-large-table" not in rules_of(up, sizes={"users": 5 * lint.MB})
    assert "index-without-concurrently-on-large-table" not in rules_of(
        "CREATE INDEX CONCURRENTLY users_email ON users (email);", sizes={"users": 200 * lint.MB})


def test_lock_estimate_names_table_and_level_per_statement() -> None:
    locks = lint.lock_estimate(scan("CREATE TABLE t (id int);\nCREATE INDEX ON t (id);\n"
                                    "ALTER TABLE users ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY i ON users (c);\n"
                                    "UPDATE users SET c = 1;\nTRUNCATE events;"))
    assert [(lk.line, lk.table, lk.lock) for lk in locks] == [
        (3, "users", "ACCESS EXCLUSIVE"), (4, "users", "SHARE UPDATE EXCLUSIVE"), (5, "users", "ROW EXCLUSIVE"),
        (6, "events", "ACCESS EXCLUSIVE")]
    assert lint.lock_estimate(scan("CREATE INDEX i ON users (c);"))[0].lock == "SHARE"


def test_lock_estimate_lists_the_same_lock_by_the_same_statement_once_at_its_first_line() -> None:
    seed = "".join(f"INSERT INTO users (id) VALUES ({i});\n" for i in range(1000))
    locks = lint.lock_estimate(scan("CREATE TABLE fresh (id int);\nINSERT INTO fresh VALUES (1);\n" + seed
                                    + "UPDATE users SET email = 'x';\nINSERT INTO events VALUES (1);\n"))
    assert [(lk.line, lk.table, lk.lock, lk.statement) for lk in locks] == [
        (3, "users", "ROW EXCLUSIVE", "INSERT"), (1003, "users", "ROW EXCLUSIVE", "UPDATE"),
        (1004, "events", "ROW EXCLUSIVE", "INSERT")]


def test_allow_comments_without_reason_are_each_found_on_their_own_line() -> None:
    text = "".join(f"-- dbops:allow rule-{i}\nSELECT {i};\n" for i in range(300))
    _, problems = lint.allowances("2_x.up.sql", text)
    assert [p.line for p in problems] == list(range(1, 600, 2))


def test_allow_comment_needs_a_reason() -> None:
    allowed, problems = lint.allowances("2_x.up.sql", "-- dbops:allow drop-column archived in ticket 42\n"
                                                      "-- dbops:allow rename-table\n")
    assert allowed == {"drop-column": "archived in ticket 42"}
    assert [(p.rule, p.line) for p in problems] == [("allow-needs-reason", 2)]


# --- squawk, the real binary --------------------------------------------------------------------

def test_squawk_findings_carry_the_file_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "2_add_age.up.sql"
    path.write_text("-- add the age\n\nALTER TABLE users ADD COLUMN age bigint NOT NULL;\n"
                    "CREATE INDEX users_age ON users (age);\n")
    [findings] = SquawkLinter().lint([(path, True)])
    assert ("adding-required-field", 3) in {(f.rule, f.line) for f in findings}
    assert ("require-concurrent-index-creation", 4) in {(f.rule, f.line) for f in findings}
    assert all(f.filename == "2_add_age.up.sql" and f.source == "squawk" for f in findings)


def test_squawk_lints_many_files_in_one_call_each_in_its_own_transaction_mode(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("commands.pg.squawk.BATCH", 2)  # several runs per mode
    # squawk asks for IF NOT EXISTS only when the file is not wrapped in a transaction.
    create, narrow, clean = "CREATE TABLE x (id bigint);\n", "ALTER TABLE t ADD COLUMN c int;\n", "SELECT 1;\n"
    files = []
    for i, (text, in_transaction) in enumerate([(create, True), (narrow, True), (create, False), (clean, True),
                                                (create, False), (clean, False), (narrow, False)], start=1):
        path = tmp_path / f"{i}_m.up.sql"
        path.write_text(text)
        files.append((path, in_transaction))
    found = SquawkLinter().lint(files)
    assert [{f.filename for f in findings} for findings in found] == [
        {path.name} if findings else set() for (path, _), findings in zip(files, found, strict=True)]
    assert [any(f.rule == "prefer-robust-stmts" for f in findings) for findings in found] == [
        False, False, True, False, True, False, True]
    assert [any(f.rule == "prefer-bigint-over-int" for f in findings) for findings in found] == [
        False, True, False, False, False, False, True]
    assert found[3] == found[5] == []


def test_a_file_too_large_for_squawk_gets_an_info_finding_and_the_others_are_still_linted(tmp_path: Path) -> None:
    seed = tmp_path / "2_seed.up.sql"
    row = "INSERT INTO users (id, email) VALUES (1, 'someone@example.com');\n"
    seed.write_text(row * (squawk.MAX_BYTES // len(row) + 1))
    small = tmp_path / "3_add_age.up.sql"
    small.write_text("ALTER TABLE users ADD COLUMN age bigint NOT NULL;\n")
    too_large, linted = SquawkLinter().lint([(seed, True), (small, True)])
    assert [(f.rule, f.severity, f.line) for f in too_large] == [("squawk-not-run", "info", None)]
    assert "4.0 MB, over the 4 MB" in too_large[0].message and "dbops' own rules still checked it" in too_large[0].message
    assert "adding-required-field" in {f.rule for f in linted}


def test_a_missing_squawk_is_one_finding_per_file_not_a_crash(tmp_path: Path) -> None:
    paths = [tmp_path / "1_x.up.sql", tmp_path / "2_y.up.sql"]
    for path in paths:
        path.write_text("SELECT 1;")
    found = SquawkLinter(binary=tmp_path / "no-such-squawk").lint([(paths[0], True), (paths[1], False)])
    assert [[(f.filename, f.rule, f.severity) for f in findings] for findings in found] == [
        [("1_x.up.sql", "squawk-not-run", "warning")], [("2_y.up.sql", "squawk-not-run", "warning")]]


# --- through the executor, on PostgreSQL -----------------------------------------------------------

def linted(bed, **kwargs) -> None:
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            linter=SquawkLinter(), **kwargs)


def test_plan_lists_pending_files_in_order_with_findings_and_locks(make_bed) -> None:
    bed = make_bed({**BASE, "2_rename.up.sql": "ALTER TABLE users RENAME COLUMN email TO mail;",
                    "3_index.up.sql": "CREATE INDEX users_age ON users (age);",
                    "3_index.down.sql": "DROP INDEX users_age;"})
    linted(bed)
    bed.run("migrate up 1")  # users exists now: renaming it may break the running application
    plan = bed.run("migrate plan")
    assert isinstance(plan, PlanResult) and plan.outcome is Outcome.FAILED
    assert [f.version for f in plan.files] == [2, 3]
    second = {(f.rule, f.filename, f.line) for f in plan.files[0].findings}
    assert {("rename-column", "2_rename.up.sql", 1), ("missing-down", "2_rename.up.sql", None),
            ("renaming-column", "2_rename.up.sql", 1)} <= second
    assert [(lk.table, lk.lock) for lk in plan.files[1].locks] == [("users", "SHARE")]
    assert bed.state() == (1, False)  # planning changes nothing


def test_large_table_rule_reads_the_size_now(make_bed) -> None:
    bed = make_bed({**BASE, "2_index.up.sql": "CREATE INDEX users_age ON users (age);",
                    "2_index.down.sql": "DROP INDEX users_age;"}, lint_large_table_mb=0)
    linted(bed)
    before = bed.run("migrate plan").files[1].findings  # users does not exist yet: no size, no finding
    assert "index-without-concurrently-on-large-table" not in {f.rule for f in before}
    bed.run("migrate up 1")
    bed.execute("INSERT INTO users SELECT g, 'u' || g, '1' FROM generate_series(1, 2000) g")
    rules = {f.rule for f in bed.run("migrate plan").files[0].findings}
    assert "index-without-concurrently-on-large-table" in rules


@pytest.fixture
def gated(make_bed, control_url):
    def make(files: dict[str, str], **env):
        bed = make_bed({**BASE, **files}, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"], **env)
        migrate_control_database(control_url)
        linted(bed, approvals=PgApprovals(control_url))
        return bed
    return make


def with_rows(bed):
    """``bed`` at version 1 with a row in users: dropping its columns loses data now."""
    bed.run("migrate up 1")
    bed.execute("INSERT INTO users VALUES (1, 'a@example.com', '41')")
    return bed


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


DROP = {"2_drop_age.up.sql": "ALTER TABLE users DROP COLUMN age;",
        "2_drop_age.down.sql": "ALTER TABLE users ADD COLUMN age text;"}


def test_blocking_findings_turn_up_into_a_request_with_the_findings(gated) -> None:
    bed = with_rows(gated(DROP))
    needed = ask(bed, "migrate up")
    assert isinstance(needed, ApprovalNeeded) and bed.state() == (1, False)  # nothing ran
    rules = {(f.rule, f.filename, f.line) for f in needed.request.impact.findings}
    assert ("drop-column", "2_drop_age.up.sql", 1) in rules
    assert any(f.source == "squawk" for f in needed.request.impact.findings)
    # the request keeps its findings in the control database, and the approver runs it
    decided = ask(bed, f"dbops approve {needed.request.id}", user="U0BOB")
    assert decided.outcome is Outcome.DONE and bed.state() == (2, False)


def test_without_blocking_findings_up_just_runs(gated) -> None:
    bed = gated({"2_status.up.sql": "ALTER TABLE users ADD COLUMN status text DEFAULT 'active';",
                 "2_status.down.sql": "ALTER TABLE users DROP COLUMN status;"})
    result = ask(bed, "migrate up")
    assert isinstance(result, MigrateResult) and bed.state() == (2, False)


def test_allow_comment_accepts_the_finding_with_its_reason(gated) -> None:
    bed = with_rows(gated({**DROP, "2_drop_age.up.sql": "-- dbops:allow drop-column age was archived (ticket 42)\n"
                                                         "ALTER TABLE users DROP COLUMN age;"}))
    plan = ask(bed, "migrate plan")
    drop = next(f for f in plan.files[0].findings if f.rule == "drop-column")
    assert drop.allowed_by == "age was archived (ticket 42)" and plan.outcome is Outcome.DONE
    assert isinstance(ask(bed, "migrate up"), MigrateResult) and bed.state() == (2, False)


def test_allow_comment_without_reason_accepts_nothing(gated) -> None:
    bed = with_rows(gated({**DROP, "2_drop_age.up.sql": "-- dbops:allow drop-column\nALTER TABLE users DROP COLUMN age;"}))
    assert isinstance(ask(bed, "migrate up"), ApprovalNeeded)


def test_config_allow_list_and_block_level(gated) -> None:
    assert isinstance(ask(with_rows(gated(DROP, lint_allow=["drop-column"])), "migrate up"), MigrateResult)


def test_block_severity_none_disables_the_gate(gated) -> None:
    assert isinstance(ask(with_rows(gated(DROP, lint_block_severity="none")), "migrate up"), MigrateResult)


# --- the CLI, for CI ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("files", "code"), [(DROP, 1), ({"2_ok.up.sql": "CREATE TABLE t (id int);",
                                                         "2_ok.down.sql": "DROP TABLE t;"}, 0)])
def test_cli_plan_json_exits_1_on_blocking_findings(make_bed, tmp_path: Path, capsys, files, code) -> None:
    bed = with_rows(make_bed({**BASE, **files}))
    capsys.readouterr()
    path = tmp_path / "dbops.toml"
    path.write_text('[environments.test]\ndatabase_url = "${TEST_DATABASE_URL}"\nmigrations_dir = "migrations"\n'
                    'snapshot_dir = "snapshots"\nrequire_approval = []\n')
    os.environ["TEST_DATABASE_URL"] = bed.url
    try:
        assert main(["migrate", "plan", "--format", "json", "--config", str(path)]) == code
    finally:
        os.environ.pop("TEST_DATABASE_URL", None)
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == code
    if code:  # anything but success is the error object, the plan in its details
        assert out["kind"] == "failed" and "1 blocking" in out["message"]
        out = out["details"]
    assert out["kind"] == "PlanResult" and [f["version"] for f in out["files"]] == [2]
    assert out["blocking"] == (1 if code else 0)
