"""What dbops reads a migration file as: bytes that would change what PostgreSQL runs are
refused, and every statement keeps its place in the file, whatever the file's size."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pglast.parser import ParseError

from bot.cli.main import main
from commands.sql import sqlsplit
from commands.errors import SourceError
from commands.results import Outcome, Reason, Refusal
from commands.lint.results import PlanResult
from commands.migrate.results import ValidateResult
from commands.sql.sqlparse import _table
from commands.sql.sqlscan import scan
from commands.sql.sqlsplit import WINDOW, Piece

# The long variant runs SCALE times the examples: DBOPS_FUZZ_SCALE=20 (bench/long_tests.py).
SCALE = max(1, int(os.environ.get("DBOPS_FUZZ_SCALE", "1")))

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


def test_cli_up_of_a_file_with_a_nul_byte_exits_3_and_says_where_it_is(make_bed, tmp_path: Path, capsys) -> None:
    bed = make_bed({"1_nul.up.sql": WITH_NUL})
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "{bed.migrations}"\n'
                      f'snapshot_dir = "{tmp_path / "snapshots"}"\nrequire_approval = []\n')
    assert main(["migrate", "up", "--config", str(config)]) == 3
    assert "`1_nul.up.sql:2:25` NUL byte (0x00) at byte 49" in capsys.readouterr().out
    assert bed.tables() == set() and bed.state() is None


def test_file_that_ends_mid_statement_is_a_syntax_error_at_its_end() -> None:
    problem = scan("SELECT 1;\nCREATE TABLE").syntax_error
    assert problem.message == "syntax error at end of input"
    assert (problem.position.line, problem.position.column) == (2, 13)


def test_byte_order_mark_is_named_in_the_syntax_error() -> None:
    problem = scan("\ufeffCREATE TABLE t (id int);").syntax_error
    assert "byte order mark" in problem.message and "without a BOM" in problem.message


# --- every statement in its place, in a large file --------------------------------------------

# One statement of each shape seed data and schema files have; none starts with a comment, so
# each starts at its first character. Accents, CJK and an emoji (one character, four bytes)
# make character and byte offsets differ.
SHAPES = [
    ("InsertStmt", "INSERT INTO people (id, name) VALUES ({i}, 'Zoë 🙂 {i}')"),
    ("InsertStmt", 'insert into "Mixed Case".t values ({i}, E\'it\'\'s \\\\ a ; test\')'),
    ("UpdateStmt", "UPDATE people SET name = 'x;y' WHERE id = {i} /* trailing comment */"),
    ("SelectStmt", "SELECT setval('people_id_seq', {i})"),
    ("CreateStmt", 'CREATE TABLE t{i} (\n    id int,\n    "naïve" text\n)'),
    ("CreateFunctionStmt", "CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT {i};\nEND"),
    ("CreateFunctionStmt", "CREATE FUNCTION g{i}() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN 'a;b'; END $body$"),
    ("RuleStmt", "CREATE RULE r{i} AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))"),
    ("DeleteStmt", "DELETE FROM sessions WHERE id = {i}"),
    ("InsertStmt", "WITH d AS (DELETE FROM x RETURNING *) INSERT INTO y SELECT * FROM d"),
    ("InsertStmt", "INSERT INTO 北京 VALUES ('北京;{i}')"),
    ("SelectStmt", "SELECT $$ a ; b $$"),
    ("DoStmt", "DO $do$ BEGIN PERFORM 1; END $do$"),
]
# What may stand between two statements: PostgreSQL sees only the ";", whatever else is there.
SEPARATORS = [";\n", ";", " ;\r\n", ";\n\n-- between, ü\n", "; /* an empty statement */ ;\n", ";;\n", ";\t\n"]


def generated_file(count: int) -> tuple[str, list[tuple[int, str, str]]]:
    """A file of ``count`` statements and (line, text, kind) of each, counted as it is written.
    Statement 1000 is a function whose body is over 1 MiB: longer than the lexer's window."""
    parts: list[str] = []
    expected = []
    line = 1
    for i in range(count):
        kind, sql = SHAPES[i % len(SHAPES)]
        sql = sql.format(i=i)
        if i == 1000:
            kind, sql = "CreateFunctionStmt", ("CREATE FUNCTION big() RETURNS void LANGUAGE plpgsql AS $big$\nBEGIN\n"
                                               + "  PERFORM 'é; filler';\n" * 60_000 + "END\n$big$")
        expected.append((line, sql, kind))
        separator = SEPARATORS[(i * 7) % len(SEPARATORS)]
        parts += [sql, separator]
        line += sql.count("\n") + separator.count("\n")
    return "".join(parts) + "-- the end\n", expected


def test_every_statement_of_a_large_file_keeps_its_line_and_its_exact_text() -> None:
    text, expected = generated_file(6000)
    assert len(expected[1000][1]) > WINDOW  # the lexer must widen its window to take it whole
    sqlfile = scan(text)
    assert sqlfile.syntax_error is None
    assert [(s.line, text[s.start:s.end], s.kind) for s in sqlfile.statements] == expected


# Whatever the text, the statement-by-statement reading either declines or gives exactly what
# one parse of the whole file gives (positions, lines, kinds and target tables).
NOISE = ["x", "(", ")", "'", '"', "$$", "$a$", "$é$", "$q$", "--", "/*", "*/", "é", "\u3000", "\x0b", "BEGIN ATOMIC",
         "END", "SELECT", "1e", "0x", "\\"]
# Mostly statements, with noise enough that about two files in three do not parse.
PIECES = st.lists(st.tuples(st.sampled_from([sql for _, sql in SHAPES] * 8 + NOISE),
                            st.sampled_from(SEPARATORS * 4 + [" ", "\n", ""])), max_size=12)


def shape(pieces: list[Piece]) -> list[tuple]:
    return [(p.start, p.end, p.line, type(p.node).__name__,
             _table(p.node.relation) if getattr(p.node, "relation", None) is not None else None) for p in pieces]


@settings(max_examples=400 * SCALE, deadline=None)
@given(PIECES)
def test_reading_statement_by_statement_agrees_with_one_parse_of_the_whole_file(parts) -> None:
    text = "".join(sql.format(i=n) + separator for n, (sql, separator) in enumerate(parts))
    fast = sqlsplit.by_statement(text)
    try:
        exact = sqlsplit.whole(text)
    except ParseError:
        assert fast is None, text  # a file PostgreSQL refuses is never read as statements
        return
    if fast is not None:
        assert shape(fast) == shape(exact), text


def test_a_dollar_quote_tag_with_an_accent_is_never_confused_with_an_ascii_one() -> None:
    # In the ASCII twin both tags would read $q$; the file is one statement, a string.
    text = "SELECT $é$ a $q$; DROP TABLE users; $q$ b $é$;\n"
    assert [s.kind for s in scan(text).statements] == ["SelectStmt"]
    assert scan(text).data_loss == ()


def test_text_between_statements_that_is_not_sql_is_a_syntax_error() -> None:
    # PostgreSQL's scanner-based split drops these silently; dbops must not.
    assert scan("SELECT 1;\ngarbage;\nSELECT 2;").syntax_error.position.line == 2
    assert scan("SELECT 1;\nSELECT (2;\nDROP TABLE users;").syntax_error is not None


# --- the run uses the same places -----------------------------------------------------------

def seed_file(rows: int, *, bad_row: int | None = None) -> tuple[str, int | None]:
    """INSERTs with accented names and emoji, comments between them; the line of ``bad_row``."""
    parts, line, bad_line = [], 1, None
    for i in range(rows):
        value = "'not a number'" if i == bad_row else str(i)
        if i == bad_row:
            bad_line = line + 1
        parts.append(f"-- row {i}, é\nINSERT INTO people (id, name) VALUES ({value}, 'Zoë 🙂 {i}; ok');\n")
        line += 2
    return "".join(parts), bad_line


def test_a_failing_statement_deep_in_a_large_seed_file_is_named_by_its_line_and_the_fixed_file_loads_exactly(
        make_bed) -> None:
    table = {"1_people.up.sql": "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL);"}
    broken, bad_line = seed_file(4000, bad_row=3500)
    bed = make_bed({**table, "2_seed.up.sql": broken})
    failed = bed.run("migrate up")
    assert failed.outcome is Outcome.FAILED and failed.failure.filename == "2_seed.up.sql"
    assert failed.failure.error.sqlstate == "22P02" and failed.failure.error.line == bad_line == 7002
    assert bed.state() == (1, False) and bed.query("SELECT count(*) FROM people") == [(0,)]

    bed.write({"2_seed.up.sql": seed_file(4000)[0]})
    assert bed.run("migrate up").outcome is Outcome.DONE
    assert bed.query("SELECT count(*), min(id), max(id) FROM people") == [(4000, 0, 3999)]
    assert bed.query("SELECT name FROM people WHERE id = 3999") == [("Zoë 🙂 3999; ok",)]


# --- the file's bytes, exactly -------------------------------------------------------------

def test_invalid_utf8_is_refused_naming_file_line_and_byte_and_nothing_is_applied(make_bed) -> None:
    bed = make_bed({"1_first.up.sql": "CREATE TABLE first (id int);"})
    (bed.migrations / "2_latin1.up.sql").write_bytes(b"CREATE TABLE people (name text);\n"
                                                     b"INSERT INTO people VALUES ('caf\xe9');\n")
    said = "2_latin1.up.sql is not valid UTF-8 at line 2 (byte 64)."
    assert [(p.filename, p.message) for p in bed.run("migrate validate").problems if p.severity == "error"] == [
        ("2_latin1.up.sql", said)]
    plan = bed.run("migrate plan")
    assert [(f.rule, f.message) for p in plan.files for f in p.findings if f.severity == "error"] == [
        ("unreadable", said)]
    with pytest.raises(SourceError, match=re.escape(said)):
        bed.run("migrate up")
    assert bed.tables() == set() and bed.state() is None


def test_carriage_returns_reach_postgresql_as_the_file_has_them(make_bed) -> None:
    # golang-migrate sends the file's bytes; reading it in text mode would store "a\nb".
    bed = make_bed({"1_notes.up.sql": "CREATE TABLE notes (body text);\r\nINSERT INTO notes VALUES ('a\r\nb\rc');\r\n"})
    assert bed.run("migrate up").outcome is Outcome.DONE
    assert bed.query("SELECT body FROM notes") == [("a\r\nb\rc",)]
