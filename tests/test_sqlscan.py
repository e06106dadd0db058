"""What dbops reads a migration file as: bytes that would change what PostgreSQL runs are
refused, and every statement keeps its place in the file, whatever the file's size."""

from __future__ import annotations

from commands.results import Outcome, PlanResult, Reason, Refusal, ValidateResult
from commands.sqlscan import scan

# The NUL is on line 2: PostgreSQL would read this file only up to it and create `a` alone.
WITH_NUL = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\0\nCREATE TABLE c (id int);\n"


# --- bytes that change what runs ------------------------------------------------------------

def test_nul_byte_is_refused_naming_its_line_column_and_byte() -> None:
    problem = scan(WITH_NUL).syntax_error
    assert problem is not None and (problem.position.line, problem.position.column) == (2, 25)
    assert "NUL byte (0x00) at byte 49" in problem.message
    # The byte offset (from 0, as an editor's "go to byte" takes it) counts UTF-8 bytes, the column characters.
    accented = scan("-- éé\0").syntax_error
    assert "at byte 7:" in accented.message and accented.position.column == 6


def test_nul_byte_is_refused_by_validate_plan_dry_run_and_up_and_nothing_is_applied(make_bed) -> None:
    bed = make_bed({"1_first.up.sql": "CREATE TABLE first (id int);", "1_first.down.sql": "DROP TABLE first;",
                    "2_nul.up.sql": WITH_NUL, "2_nul.down.sql": "DROP TABLE a, b, c;"})

    validated = bed.run("migrate validate")
    assert isinstance(validated, ValidateResult) and validated.outcome is Outcome.FAILED
    assert [(p.filename, p.line, p.column) for p in validated.problems if p.severity == "error"] == [
        ("2_nul.up.sql", 2, 25)]

    planned = bed.run("migrate plan")
    assert isinstance(planned, PlanResult) and planned.outcome is Outcome.FAILED
    assert [(f.rule, f.filename, f.line) for p in planned.files for f in p.findings if f.severity == "error"] == [
        ("syntax-error", "2_nul.up.sql", 2)]

    dry = bed.run("migrate dry-run")
    assert [(f.filename, f.status) for f in dry.files] == [("1_first.up.sql", "not_run"), ("2_nul.up.sql", "failed")]
    assert dry.files[1].error.line == 2 and "NUL" in dry.files[1].error.message

    refused = bed.run("migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.SYNTAX_ERROR
    assert [(p.filename, p.line) for p in refused.problems] == [("2_nul.up.sql", 2)]
    assert "NUL" in refused.problems[0].message
    # Not even the good file before it ran: every planned file is read before anything runs.
    assert bed.tables() == set() and bed.state() is None


def test_file_that_ends_mid_statement_is_a_syntax_error_at_its_end() -> None:
    problem = scan("SELECT 1;\nCREATE TABLE").syntax_error
    assert problem.message == "syntax error at end of input"
    assert (problem.position.line, problem.position.column) == (2, 13)


def test_byte_order_mark_is_named_in_the_syntax_error() -> None:
    problem = scan("\ufeffCREATE TABLE t (id int);").syntax_error
    assert "byte order mark" in problem.message and "without a BOM" in problem.message
