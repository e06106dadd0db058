"""Every migrate operation against a real PostgreSQL, as golang-migrate would leave it."""

from __future__ import annotations

from datetime import datetime, timezone

from commands.migrate.results import DryRunResult, MigrateResult, StatusResult, ValidateResult
from commands.results import Outcome, Reason, Refusal

THREE = {
    "1_users.up.sql": "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_events.up.sql": "CREATE TABLE events (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id));",
    "2_events.down.sql": "DROP TABLE events;",
    "10_places.up.sql": "CREATE TABLE places (id bigserial PRIMARY KEY);",
    "10_places.down.sql": "DROP TABLE places;",
}


def test_status_of_an_empty_database_lists_every_file_as_pending(make_bed):
    bed = make_bed(THREE)
    result = bed.run("migrate status")
    assert isinstance(result, StatusResult)
    assert (result.state.version, result.state.dirty) == (-1, False)
    assert [m.version for m in result.pending] == [1, 2, 10]  # numeric, not lexical, order
    assert result.applied == ()
    assert bed.query("SELECT to_regclass('schema_migrations')") == [(None,)], "status must not write"


def test_up_applies_all_pending_and_records_the_last_version_clean(make_bed):
    bed = make_bed(THREE)
    result = bed.run("migrate up")
    assert isinstance(result, MigrateResult) and result.outcome is Outcome.DONE
    assert [s.version for s in result.steps] == [1, 2, 10]
    assert bed.state() == (10, False)
    assert bed.tables() == {"users", "events", "places"}
    assert bed.run("migrate up").outcome is Outcome.NO_CHANGE


def test_up_n_applies_exactly_n(make_bed):
    bed = make_bed(THREE)
    bed.run("migrate up 2")
    assert bed.state() == (2, False)
    status = bed.run("migrate status")
    assert [m.version for m in status.applied] == [1, 2] and [m.version for m in status.pending] == [10]


def test_down_n_reverts_n_and_down_all_leaves_no_version(make_bed):
    bed = make_bed(THREE)
    bed.run("migrate up")
    result = bed.run("migrate down 1")
    assert [(s.version, s.direction) for s in result.steps] == [(10, "down")]
    assert bed.state() == (2, False) and "places" not in bed.tables()
    bed.run("migrate down --all")
    assert bed.state() is None  # golang-migrate's "no version": the table is empty
    assert bed.tables() == set()


def test_goto_moves_up_or_down_to_the_version(make_bed):
    bed = make_bed(THREE)
    assert [s.version for s in bed.run("migrate goto 10").steps] == [1, 2, 10]
    down = bed.run("migrate goto 1")
    assert [(s.version, s.direction) for s in down.steps] == [(10, "down"), (2, "down")]
    assert bed.state() == (1, False)
    assert bed.run("migrate goto 1").outcome is Outcome.NO_CHANGE


def test_force_sets_the_version_clean_without_running_anything(make_bed):
    bed = make_bed(THREE)
    bed.run("migrate up 1")
    bed.execute("UPDATE schema_migrations SET version = 2, dirty = true")
    result = bed.run("migrate force 2")
    assert result.outcome is Outcome.DONE
    assert (result.before.version, result.before.dirty) == (2, True)
    assert bed.state() == (2, False)
    assert "events" not in bed.tables()  # force changes the record, never the schema
    bed.run("migrate force -1")
    assert bed.state() is None


def test_version_zero_and_timestamps_and_gaps_order_numerically(make_bed):
    bed = make_bed({
        "0_init.up.sql": "CREATE TABLE zero ();",
        "20260128001_a.up.sql": "CREATE TABLE a ();",
        "3_b.up.sql": "CREATE TABLE b ();",
    })
    result = bed.run("migrate up")
    assert [s.version for s in result.steps] == [0, 3, 20260128001]
    assert bed.run("migrate down 2").after.version == 0
    assert bed.state() == (0, False)  # version 0 is a version, not "none"


def test_missing_down_file_is_a_noop_step_and_is_flagged(make_bed):
    bed = make_bed({"1_a.up.sql": "CREATE TABLE a ();", "2_b.up.sql": "CREATE TABLE b ();",
                    "2_b.down.sql": "DROP TABLE b;"})
    bed.run("migrate up")
    assert bed.run("migrate status").missing_down == (1,)
    result = bed.run("migrate down --all")
    assert [(s.version, s.filename) for s in result.steps] == [(2, "2_b.down.sql"), (1, None)]
    assert bed.state() is None
    assert bed.tables() == {"a"}  # golang-migrate's semantics: no down file, nothing undone


def test_empty_and_comment_only_files_are_valid_noop_steps(make_bed):
    bed = make_bed({"1_empty.up.sql": "", "2_comment.up.sql": "-- nothing yet\n/* really */\n",
                    "3_real.up.sql": "CREATE TABLE real ();"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.DONE and len(result.steps) == 3
    assert bed.state() == (3, False)


def test_dollar_quoted_bodies_comments_and_semicolons_in_strings_apply(make_bed):
    bed = make_bed({"1_tricky.up.sql": """
-- a comment; with a semicolon
CREATE TABLE notes (id int, body text DEFAULT 'a;b', meta text DEFAULT $q$it's; here$q$);
/* block comment; DROP TABLE notes; */
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.body := NEW.body || ';';  -- semicolons inside the body
  RETURN NEW;
END;
$$;
CREATE TRIGGER notes_bump BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION bump();
INSERT INTO notes (id) VALUES (1);
INSERT INTO notes (id, body) SELECT 2, format('%s%%', 50) WHERE 'x%' LIKE 'x%%';
"""})
    assert bed.run("migrate up").outcome is Outcome.DONE
    assert bed.query("SELECT body, meta FROM notes ORDER BY id") == [("a;b;", "it's; here"), ("50%;", "it's; here")]


def test_dirty_database_refuses_up_down_and_goto_with_recovery_options(make_bed):
    bed = make_bed(THREE)
    bed.run("migrate up 2")
    bed.execute("UPDATE schema_migrations SET dirty = true")
    for text in ("migrate up", "migrate down 1", "migrate goto 1", "migrate dry-run"):
        result = bed.run(text)
        assert isinstance(result, Refusal) and result.reason is Reason.DIRTY, text
        assert (result.state.version, result.state.dirty) == (2, True)
    assert bed.state() == (2, True)


def test_database_ahead_of_the_files_is_a_version_mismatch(make_bed):
    bed = make_bed(THREE)
    bed.run("migrate up")
    bed.execute("UPDATE schema_migrations SET version = 11")
    status = bed.run("migrate status")
    assert status.mismatch is not None and status.mismatch.ahead
    assert (status.mismatch.database_version, status.mismatch.latest_file_version) == (11, 10)
    refused = bed.run("migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.VERSION_MISMATCH
    assert bed.state() == (11, False)


def test_dry_run_reports_each_file_and_changes_nothing(make_bed):
    bed = make_bed({
        "1_ok.up.sql": "CREATE TABLE ok (id int);",
        "2_bad.up.sql": "CREATE TABLE bad (id int);\nINSERT INTO ok VALUES ('not a number');\n",
        "3_later.up.sql": "CREATE TABLE later ();",
    })
    result = bed.run("migrate dry-run")
    assert isinstance(result, DryRunResult) and result.outcome is Outcome.FAILED
    assert [(f.version, f.status) for f in result.files] == [(1, "ok"), (2, "failed"), (3, "not_run")]
    error = result.files[1].error
    assert error.sqlstate == "22P02" and error.line == 2 and "integer" in error.message
    assert bed.tables() == set() and bed.state() is None


def test_dry_run_skips_statements_that_cannot_run_in_a_transaction_and_says_so(make_bed):
    bed = make_bed({"1_t.up.sql": "CREATE TABLE t (a int);",
                    "2_idx.up.sql": "CREATE INDEX CONCURRENTLY t_a ON t (a);"})
    result = bed.run("migrate dry-run")
    assert [f.status for f in result.files] == ["ok", "skipped"]
    assert "CREATE INDEX CONCURRENTLY" in result.files[1].note
    assert bed.tables() == set()


def test_dry_run_says_would_succeed_only_for_what_it_ran_and_lists_files_it_could_not_check(make_bed):
    from bot.slack.blocks import render as blocks
    from bot.cli.shell import result_text

    bed = make_bed({"1_t.up.sql": "CREATE TABLE t (a int);",
                    "2_idx.up.sql": "CREATE INDEX CONCURRENTLY t_a ON t (a);",
                    "3_mixed.up.sql": "ALTER TABLE t ADD COLUMN b int;\nCREATE INDEX CONCURRENTLY t_b ON t (b);"})
    result = bed.run("migrate dry-run")
    assert [f.status for f in result.files] == ["ok", "skipped", "partial"]

    shown = result_text(result, command="migrate dry-run test")
    card = blocks.render(result, now=datetime.now(timezone.utc), command="/migrate dry-run test")
    headline = card.text
    for said in (shown, headline):
        assert "would succeed for the 1 it ran; 2 not checked" in said, said
        assert "cannot run in a transaction" in said
    assert "not checked `2_idx.up.sql`" in shown and "partly checked `3_mixed.up.sql`" in shown
    rows = str(card.blocks)
    assert "*not checked* `2_idx.up.sql`" in rows and "*partly checked* `3_mixed.up.sql`" in rows


def test_a_dry_run_that_ran_everything_says_would_succeed_plainly(make_bed):
    from bot.cli.shell import result_text

    bed = make_bed({"1_t.up.sql": "CREATE TABLE t (a int);"})
    shown = result_text(bed.run("migrate dry-run"), command="migrate dry-run")
    assert shown.splitlines()[0] == "test: dry run of 1 migration from no version (nothing applied) would succeed"


def test_validate_reports_syntax_errors_with_file_and_line(make_bed):
    bed = make_bed({"1_ok.up.sql": "SELECT 1;", "2_bad.up.sql": "SELECT 1;\n\nCREAT TABLE x ();\n",
                    "README.md": "docs"})
    result = bed.run("migrate validate")
    assert isinstance(result, ValidateResult) and result.outcome is Outcome.FAILED
    errors = [p for p in result.problems if p.severity == "error"]
    assert [(p.filename, p.line) for p in errors] == [("2_bad.up.sql", 3)]
    assert "CREAT" in errors[0].message
    warnings = {p.filename for p in result.problems if p.severity == "warning"}
    assert {"README.md", "1_ok.up.sql"} <= warnings  # skipped file, missing down file


def test_validate_flags_a_concurrent_index_mixed_with_other_statements(make_bed):
    bed = make_bed({"1_mixed.up.sql": "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
                    "1_mixed.down.sql": "DROP TABLE t;"})
    errors = [p for p in bed.run("migrate validate").problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].line == 2 and "own" in errors[0].message
