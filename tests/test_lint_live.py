"""Live-data risks judged against the database at the start of the run (``commands.lint.lint_live``,
``PgInspector.live_objects``): lowered to info, with why, only where the database shows no risk."""

from __future__ import annotations

import psycopg

from commands.lint.lint_live import judge
from commands.pg.database import PgInspector, PgLiveObjects
from commands.lint.results import Finding
from commands.sql.sqlscan import scan


def finding(rule: str, filename: str, line: int, severity: str = "error", source: str = "dbops") -> Finding:
    return Finding(rule=rule, severity=severity, filename=filename, line=line, message="…", source=source)


def judged(files: list[tuple[int, str]], found: list[list[Finding]], *, existing=(), empty=()) -> list[list[Finding]]:
    live = PgLiveObjects(existing=frozenset(existing), empty=frozenset(empty))
    return judge([(v, f"{v}_x.up.sql", scan(text)) for v, text in files], found, live)


def test_a_drop_on_a_table_an_earlier_file_of_the_run_creates_is_info_and_names_that_migration() -> None:
    (_, [drop]) = judged([(1, "CREATE TABLE t (id int, a text);"), (2, "ALTER TABLE t DROP COLUMN a;")],
                         [[], [finding("drop-column", "2_x.up.sql", 1)]])
    assert (drop.severity, drop.live_judgement) == (
        "info", "t is created by migration 1 in this same run: it holds no live data yet")


def test_a_drop_on_a_live_table_with_rows_still_blocks_and_on_an_empty_one_is_info() -> None:
    files, found = [(2, "ALTER TABLE t DROP COLUMN a;")], [[finding("drop-column", "2_x.up.sql", 1)]]
    assert judged(files, found, existing={"t"})[0][0].severity == "error"
    empty = judged(files, found, existing={"t"}, empty={"t"})[0][0]
    assert (empty.severity, empty.live_judgement) == ("info", "t has no rows in the database now")


def test_a_rename_of_an_empty_live_table_still_blocks_the_application_may_use_it() -> None:
    files = [(2, "ALTER TABLE t RENAME COLUMN a TO b;")]
    found = [[finding("rename-column", "2_x.up.sql", 1), finding("renaming-column", "2_x.up.sql", 1, "warning",
                                                                 "squawk")]]
    assert [f.severity for f in judged(files, found, existing={"t"}, empty={"t"})[0]] == ["error", "warning"]
    assert [f.severity for f in judged(files, found)[0]] == ["info", "info"]  # t does not exist now


def test_a_renamed_live_table_keeps_its_rows_under_its_new_name_and_a_dropped_one_made_again_is_new() -> None:
    files = [(2, "ALTER TABLE t RENAME TO t2;\nDROP TABLE u;\nCREATE TABLE u (id int, a text);"),
             (3, "ALTER TABLE t2 DROP COLUMN a;\nALTER TABLE u DROP COLUMN a;")]
    found = [[], [finding("drop-column", "3_x.up.sql", 1), finding("drop-column", "3_x.up.sql", 2)]]
    t2, u = judged(files, found, existing={"t", "u"})[1]
    assert t2.severity == "error" and u.live_judgement.startswith("u is created by migration 2")


def test_a_squawk_finding_pointing_inside_a_statement_is_judged_by_that_statement() -> None:
    files = [(1, "CREATE TABLE t (id int);\nALTER TABLE t\n    ADD COLUMN a int NOT NULL;\nALTER TABLE big ADD "
                 "COLUMN b int NOT NULL;")]
    found = [[finding("adding-required-field", "1_x.up.sql", 3, "warning", "squawk"),
              finding("adding-required-field", "1_x.up.sql", 4, "warning", "squawk")]]
    inner, other = judged(files, found, existing={"big"})[0]
    assert (inner.severity, other.severity) == ("info", "warning")


def test_statements_sharing_a_line_are_all_judged_and_one_at_risk_keeps_the_finding() -> None:
    files = [(1, "CREATE TABLE t (id int);"), (2, "ALTER TABLE t DROP COLUMN id; ALTER TABLE big DROP COLUMN x;")]
    found = [[], [finding("drop-column", "2_x.up.sql", 1)]]
    assert judged(files, found, existing={"big"})[1][0].severity == "error"


def test_rules_that_do_not_depend_on_live_data_are_never_lowered() -> None:
    files = [(1, "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);")]
    found = [[finding("mixed-transaction", "1_x.up.sql", 2), finding("missing-down", "1_x.up.sql", 1, "warning")]]
    assert [f.severity for f in judged(files, found)[0]] == ["error", "warning"]


def test_live_objects_read_existence_and_rows_exactly_from_the_database(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE full_t (id int); INSERT INTO full_t VALUES (1); CREATE TABLE empty_t (id int);'
                     'CREATE TABLE "Mixed Case" (id int); CREATE SCHEMA s; CREATE TABLE s.t (id int);'
                     'INSERT INTO s.t VALUES (1); CREATE VIEW v AS SELECT 1 AS one;'
                     'ANALYZE')
        live = PgInspector(conn).live_objects(["full_t", "empty_t", '"Mixed Case"', "s.t", "v", "nope", "nope.t"])
    assert [live.exists(t) for t in ("full_t", "empty_t", '"Mixed Case"', "s.t", "v", "nope", "nope.t")] == [
        True, True, True, True, True, False, False]
    # a view's rows are not looked for: unknown is never taken for empty
    assert [live.has_rows(t) for t in ("full_t", "empty_t", '"Mixed Case"', "s.t", "v")] == [
        True, False, False, True, True]


def test_a_table_the_role_may_not_read_counts_as_holding_rows(app_role) -> None:
    app_role.admin("CREATE TABLE secret (id int)")  # owned by the superuser: the role may not SELECT from it
    with psycopg.connect(app_role.url, autocommit=True) as conn:
        live = PgInspector(conn).live_objects(["secret"])
    assert (live.exists("secret"), live.has_rows("secret")) == (True, True)
