"""Which version the schema really is, on real PostgreSQL, when the version table cannot say
(dirty, no row at all), and `/migrate baseline`, which records a version only when the live
schema is exactly it."""

from __future__ import annotations

from bot.cli.shell import result_text
from commands import grammar
from commands.approval.requirements import operation_of
from commands.migrate.results import StatusResult
from commands.results import Outcome
from commands.schema.results import BaselineResult
from tests.schema_history import TWO_TABLES, UNIQUE_EMAIL



def status(bed) -> tuple[StatusResult, str]:
    result = bed.run("migrate status test")
    assert isinstance(result, StatusResult), result
    return result, result_text(result, command="migrate status test")


def test_a_clean_known_version_does_no_schema_work(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    result, text = status(bed)
    assert result.schema_version is None and "live schema" not in text


def test_detection_names_the_previous_version_after_a_failed_transactional_file(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.write({"3_widgets.up.sql": "CREATE TABLE widgets (id int);\nSELECT 1 / 0;"})
    # As the migrate CLI leaves it: dirty at 3, the file's one implicit transaction rolled back.
    bed.execute("UPDATE schema_migrations SET version = 3, dirty = true")

    result, text = status(bed)

    assert result.schema_version.matches == 2 and result.schema_version.recoverable
    assert "The live schema is exactly version 2." in text
    assert "offers to record version 2: every migration before 3 is kept" in text


def test_detection_names_the_previous_version_plus_the_invalid_index_after_a_failed_concurrently_file(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.execute("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'a@example.com')")
    bed.write(UNIQUE_EMAIL)
    assert bed.run("migrate up test").outcome is Outcome.FAILED and bed.state() == (3, True)

    result, text = status(bed)

    found = result.schema_version
    assert found.matches is None and found.closest == 2 and found.recoverable
    assert [(item.kind, item.name, item.invalid) for item in found.leftovers] == [("index", "users_email_unique", True)]
    assert found.present == ("index users_email_unique (INVALID)",) and found.missing == ()
    assert "The live schema is version 2 plus what migration 3 left behind:" in text
    assert "index users_email_unique (INVALID)" in text


def test_detection_names_the_version_of_a_database_whose_schema_migrations_was_dropped(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.execute("DROP TABLE schema_migrations")

    result, text = status(bed)

    assert result.state.version == -1 and result.schema_version.matches == 2
    assert "The live schema is exactly version 2." in text and "migrate baseline 2 test" in text


def test_detection_says_what_differs_from_the_closest_version_when_none_matches(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.execute("DROP TABLE schema_migrations; ALTER TABLE users ADD COLUMN nickname text")

    result, text = status(bed)

    assert result.schema_version.matches is None and result.schema_version.closest == 2
    assert "matches no version exactly" in text and "+ column users.nickname text" in text


def test_baseline_refuses_on_a_mismatch_and_records_nothing(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.execute("DROP TABLE schema_migrations; ALTER TABLE users ADD COLUMN nickname text")

    result = bed.run("migrate baseline 2 test")

    assert isinstance(result, BaselineResult) and result.outcome is Outcome.REFUSED
    text = result_text(result, command="migrate baseline 2 test")
    assert "not baselined: the live schema is not version 2" in text and "+ column users.nickname text" in text
    assert bed.query("SELECT to_regclass('schema_migrations')") == [(None,)]  # nothing written, not even the table


def test_baseline_records_the_version_clean_when_the_schema_matches(make_bed):
    bed = make_bed(TWO_TABLES)
    bed.run("migrate up test")
    bed.execute("DROP TABLE schema_migrations")

    result = bed.run("migrate baseline 2 test")

    assert isinstance(result, BaselineResult) and result.outcome is Outcome.DONE and result.snapshot
    assert bed.state() == (2, False)
    assert "baselined at version 2" in result_text(result, command="migrate baseline 2 test")
    assert bed.run("migrate baseline 2 test").outcome is Outcome.NO_CHANGE


def test_baseline_of_a_version_no_file_has_is_a_usage_error(make_bed):
    import pytest
    from commands.errors import UsageError
    bed = make_bed(TWO_TABLES)
    with pytest.raises(UsageError, match="No migration file has version 7"):
        bed.run("migrate baseline 7 test")


def test_baseline_needs_the_approval_force_needs():
    assert operation_of(grammar.parse("migrate baseline 2 test")) == "force"
    assert operation_of(grammar.parse('rollback --recover test --reason "x"')) == "force"


def test_the_search_is_bounded_and_says_so(make_bed):
    from commands.schema.identify import MAX_COMPARED
    many = {f"{v}_t{v}.up.sql": f"CREATE TABLE t{v} (id int);" for v in range(1, MAX_COMPARED + 3)}
    bed = make_bed(many)
    bed.run("migrate up test")
    bed.execute("DROP TABLE schema_migrations; ALTER TABLE t1 ADD COLUMN extra text")

    result, text = status(bed)

    found = result.schema_version
    assert found.bounded and len(found.compared) == MAX_COMPARED and found.closest == MAX_COMPARED + 2
    assert found.compared[:3] == (MAX_COMPARED + 2, MAX_COMPARED + 1, MAX_COMPARED)  # the newest first
    assert f"Compared {MAX_COMPARED} versions" in text and "the search stopped there" in text
