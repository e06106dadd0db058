"""Reading a legacy script as psql reads it: meta-commands are found wherever psql would run
them, and only there (strings, comments, dollar quotes and COPY data hide nothing from it
and are never taken for one). The last test checks the reader against real psql."""

from __future__ import annotations

import subprocess

import pytest

from commands.pg.psql_script import PsqlScript, ScriptProblem
from commands.pg.tools import bundled_bin_dir, child_env

STD = b"SET standard_conforming_strings = on;\n"


def read(script: bytes, *, chunk: int | None = None) -> bytes:
    """What psql would be given, fed whole or ``chunk`` bytes at a time; raises ScriptProblem."""
    reader, out = PsqlScript(), []
    step = chunk or max(len(script), 1)
    for at in range(0, len(script), step):
        out.append(reader.feed(script[at:at + step]))
    out.append(reader.close())
    return b"".join(out)


def problem(script: bytes) -> str | None:
    """The reader's objection, the same whatever the chunk size (None if it has none)."""
    found = set()
    for chunk in (None, 1, 2, 3, 5, 7, 64):
        try:
            read(script, chunk=chunk)
            found.add(None)
        except ScriptProblem as err:
            found.add(str(err))
    assert len(found) == 1, found
    return found.pop()


@pytest.mark.parametrize("script, line, command", [
    (STD + b"\\! touch /tmp/x\n", 2, "\\!"),
    (STD + b"SELECT 1; \\copy (SELECT 1) TO PROGRAM 'touch /tmp/x'\n", 2, "\\copy"),
    (STD + b"\\o |touch /tmp/x\nSELECT 1;\n", 2, "\\o"),
    (STD + b"\\setenv PAGER 'touch /tmp/x'\n", 2, "\\setenv"),
    (STD + b"SELECT 1;\n\\i /etc/passwd\n", 3, "\\i"),
    (STD + b"SELECT 'a' \\gexec\n", 2, "\\gexec"),
    (STD + b"SELECT 'a'\\! id\n", 2, "\\!"),                           # right after a closing quote
    (STD + b"SELECT 1 /* c */\\! id\n", 2, "\\!"),                     # right after a comment
    (STD + b"SELECT $f$ x $f$\\! id\n", 2, "\\!"),                     # right after a dollar quote
    (STD + b"-- a comment\r\\! id\n", 2, "\\!"),                       # \r ends a comment for psql
    (STD + b"COPY t TO stdout;\n\\! id\n", 3, "\\!"),                  # TO stdout has no data lines
    (STD + b"COPY t FROM stdin;\nrow\n\\.\n\\! id\n", 5, "\\!"),       # after the data's end
    (STD + b"COPY a FROM stdin; COPY b FROM stdin;\n1\n\\.\n2\n\\.\n\\! id\n", 7, "\\!"),
    (STD + b"SELECT 1;\r\n\\! id\r\n", 3, "\\!"),
    # A COPY inside a SQL-standard function body is not run, so no data follows it.
    (STD + b"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; COPY t FROM stdin; END;\n"
           b"\\! id\n\\.\n", 3, "\\!"),
    (STD + b"\\restrict abc\n\\! id\n\\unrestrict abc\n", 3, "\\!"),  # pg_dump's lines allow nothing
])
def test_a_meta_command_is_found_with_its_line(script, line, command):
    found = problem(script)
    assert found is not None and found.startswith(f"line {line}: ") and f"({command})" in found
    assert "a restore runs SQL only" in found


@pytest.mark.parametrize("script", [
    STD + b"SELECT '\\! id';\n",
    STD + b"SELECT E'it\\'s \\! id';\n",
    STD + b"SELECT E'a'\n'b\\' \\! id';\n",                      # a continued E'' string keeps its escapes
    STD + b"SELECT $$ \\! id $$, $a$ $$ \\! $a$;\n",
    STD + b"SELECT 1 /* outer /* \\! id */ still a comment \\! */;\n",
    STD + b"SELECT 1; -- \\! id\n",
    STD + b"SELECT \"\\! id\" FROM t;\n",
    STD + b"SELECT U&'\\0041' || B'01' || X'1F' || N'\\d';\n",
    STD + b"SELECT 1::int, $1, a$b$, arr[1:2], :'var';\n",
    STD + b"COPY public.t (a, \"b c\") FROM stdin;\n\\N\t\\\\! id\n\\restrict key\n\\.x\n\\.\nSELECT 1;\n",
    STD + b"COPY t FROM stdin;\r\n\\! data\r\n\\.\r\n",
    b"SET standard_conforming_strings = off;\nSELECT 'it\\'s'; SELECT '\\\\';\n",
    b"SELECT 'no backslash before any SET';\n",
])
def test_sql_and_copy_data_are_not_taken_for_meta_commands(script):
    assert problem(script) is None


def test_pg_dumps_own_restrict_lines_are_blanked_and_data_lines_kept():
    script = (STD + b"\\restrict k3Y\nCOPY t FROM stdin;\n\\restrict data\n\\.\n\\unrestrict k3Y\n")
    assert read(script) == STD + b"\nCOPY t FROM stdin;\n\\restrict data\n\\.\n\n"


@pytest.mark.parametrize("script, said", [
    (b"SELECT 'C:\\';\n", "before the script sets standard_conforming_strings"),
    (STD + b"SELECT 1e'x';\n", "`1e'x';` runs a number into a word"),
    (b"SET client_encoding = 'SJIS';\n", "client encoding sjis"),
    (b"SET NAMES\n'BIG5';\n", "client encoding big5"),
    (b"SET client_encoding = DEFAULT\n-- and a comment\n;\n", "a SET client_encoding this reader cannot follow"),
    (STD + b"SELECT 1; \0\n", "a NUL byte"),
    (STD + b"COPY t FROM stdin;\n1\n2\n", "ends inside the data of a COPY"),
    (STD + b"COPY t FROM stdin;\n", "ends inside the data of a COPY"),
    (STD + b"SELECT 'unfinished\n", "ends inside a quoted string"),
    (STD + b"SELECT $$ unfinished\n", "ends inside a $$-quoted body"),
])
def test_what_psql_could_read_otherwise_is_refused_rather_than_guessed(script, said):
    found = problem(script)
    assert found is not None and said in found, found


def test_the_standard_strings_setting_counts_from_the_next_line_as_in_psql():
    # psql reads the server's setting once per line: a SET changes how the *next* line is read.
    assert "standard_conforming_strings" in problem(b"SET standard_conforming_strings = on; SELECT 'a\\';\n")
    assert problem(b"SET standard_conforming_strings = on;\nSELECT 'a\\';\n") is None
    assert "standard_conforming_strings" in problem(STD + b"RESET ALL;\nSELECT 'a\\';\n")


def test_a_large_copy_block_passes_through_unchanged_across_chunks():
    rows = b"".join(b"%d\t\\\\.\t\\N\t\\\\! x\n" % n for n in range(50_000))
    script = STD + b"COPY t (a, b, c, d) FROM stdin;\n" + rows + b"\\.\nSELECT 1;\n"
    for chunk in (4096, 65536, 1 << 20):
        assert read(script, chunk=chunk) == script


# Each script ends its hiding place and then runs ``\echo MISSED`` if psql sees it as a meta-
# command (alone on the rest of its line, or psql would refuse its arguments). The reader must
# flag exactly the scripts in which real psql echoes it.
AGAINST_PSQL = [
    (b"SELECT 1; \\echo MISSED\n", True),
    (b"SELECT 'x\\echo MISSED';\n", False),
    (b"SELECT E'x\\' \\echo MISSED';\n", False),
    (b"SELECT 'x\\'; \\echo MISSED\n", True),
    (b"SELECT E'a'\n'b\\' \\echo MISSED';\n", False),
    (b"SELECT E'a' 'b\\' \\echo MISSED\n';\n", True),
    (b"SELECT $a$ $$ \\echo MISSED $$ $a$;\n", False),
    (b"SELECT $a$ x $a$; \\echo MISSED\n", True),
    (b"SELECT 1 /* /* */ \\echo MISSED */;\n", False),
    (b"SELECT 1; -- c\r\\echo MISSED\n", True),
    (b"SELECT \"x\\echo MISSED\";\n", False),
    (b"SELECT U&'x\\' \\echo MISSED\n';\n", True),
    (b"CREATE TEMP TABLE t (x text);\nCOPY t FROM stdin;\n\\echo MISSED\n\\.\nSELECT 1;\n", False),
    (b"CREATE TEMP TABLE t (x text);\nCOPY t FROM stdin;\n\\.\n\\echo MISSED\n", True),
    (b"CREATE TEMP TABLE t (x text);\nCOPY t FROM stdin; COPY t FROM stdin;\n1\n\\.\n\\echo MISSED\n\\.\n", False),
    (b"CREATE TEMP TABLE t (x text);\nCOPY t TO stdout;\n\\echo MISSED\n", True),
    (b"CREATE TEMP TABLE t (x text);\nCOPY t FROM stdin;\r\n\\echo MISSED\r\n\\.\r\nSELECT 1;\n", False),
    (b"CREATE TEMP TABLE t (x text);\nCREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql BEGIN ATOMIC "
     b"SELECT 1; COPY t FROM stdin; END;\n\\echo MISSED\n\\.\n", True),
    (b"SELECT 1e'x\\' \\echo MISSED\n';\n", True),
    (b"SELECT $1$$ \\echo MISSED $$;\n", False),
    (b"SELECT 'a' -- c\n'b\\' \\echo MISSED\n';\n", True),
    (b"SELECT E'a' -- c\n'b\\' \\echo MISSED';\n", False),
    (b"SELECT $a$ $A$ \\echo MISSED $a$;\n", False),
    (b"SELECT $a$x$a$\\echo MISSED\n", True),
    (b"SELECT $$a$$$$ \\echo MISSED $$;\n", False),
    (b"SELECT 1 /* /* */ */ \\echo MISSED\n", True),
    (b"SELECT 1 /*/ \\echo MISSED */;\n", False),
    (b"SELECT 1 AS a$$ \\echo MISSED\n", True),
    (b"SELECT x'1F' \\echo MISSED\n", True),
    (b"SELECT (1;\n\\echo MISSED\n);\n", True),
    (b"SELECT :'x\\echo MISSED';\n", False),
    (b"CREATE TEMP TABLE t (x text);\n/* c */ copy \"t\" (x) from StdIn WITH (FORMAT text)\n;\n\\echo MISSED\n\\.\n", False),
    (b"CREATE TEMP TABLE t (x text);\nCOPY pg_temp.t FROM stdin;\n\\.\n\\echo MISSED\n", True),
    (b"SELECT 1, 'a''b', 'c' \\echo MISSED\n", True),
    (b"SELECT 1, 'a'\n'b \\echo MISSED';\n", False),
    (b"CREATE TEMP TABLE t (x text);\nSELECT (')' ; COPY t FROM stdin;\n\\echo MISSED\n\\.\n", True),
    (b"CREATE TEMP TABLE t (x text);\nSELECT ('(') ; COPY t FROM stdin;\n\\echo MISSED\n\\.\n", False),
]


@pytest.mark.parametrize("script, psql_runs_it", AGAINST_PSQL)
def test_the_reader_flags_exactly_the_meta_commands_real_psql_runs(database_url, script, psql_runs_it):
    script = STD + script
    ran = subprocess.run([str(bundled_bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--file=-"], input=script,
                         capture_output=True, env=child_env(database_url), timeout=60)
    assert ("MISSED" in ran.stdout.decode().splitlines()) is psql_runs_it, ran  # \echo's line, not a row
    assert (problem(script) is not None) is psql_runs_it
