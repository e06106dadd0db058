"""The migrations directory read as golang-migrate reads it, and the plans made from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import SourceError, UsageError
from commands.migrate.migrate_ops import read_sql
from commands.migrate.plans import plan_down, plan_goto, plan_up
from commands.source import MAX_VERSION, NIL_VERSION, MigrationFile, SkippedEntry, load_source, parse_filename

# golang-migrate's regexp, .sql only, in Go's semantics: `.` never matches \n and `$` is the end of the text.
GOLANG_MIGRATE = re.compile(r"([0-9]+)_([^\n]*)\.(up|down)\.sql")  # used with fullmatch


def make_dir(root: Path, *names: str) -> Path:
    directory = root / "migrations"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text(f"-- {name}\n")
    return directory


def pair(version: int | str, name: str = "m") -> tuple[str, str]:
    return f"{version}_{name}.up.sql", f"{version}_{name}.down.sql"


# --- parse_filename ---

def test_parse_filename_reads_version_name_and_direction() -> None:
    parsed = parse_filename("20260128001_add_events.down.sql")
    assert parsed == MigrationFile(version=20260128001, name="add_events", direction="down",
                                   path=Path("20260128001_add_events.down.sql"))
    assert parse_filename("0001_.up.sql") == MigrationFile(version=1, name="", direction="up", path=Path("0001_.up.sql"))


def test_parse_filename_with_thousands_of_digits_is_skipped_not_a_crash() -> None:
    parsed = parse_filename("9" * 5000 + "_huge.up.sql")
    assert isinstance(parsed, SkippedEntry) and "64-bit" in parsed.reason


NAMES = st.one_of(
    st.text(),
    st.builds(lambda v, n, d, e: f"{v}_{n}.{d}.{e}",
              st.one_of(st.integers(min_value=0, max_value=2**70).map(str), st.text("0123456789-+ ", max_size=25)),
              st.text(), st.sampled_from(["up", "down", "UP", "sideways"]), st.sampled_from(["sql", "txt", "", "sql\n"])),
)


@settings(max_examples=1000)
@given(NAMES)
def test_parse_filename_never_raises_and_returns_a_file_or_a_skipped_entry(name: str) -> None:
    parsed = parse_filename(name)
    assert isinstance(parsed, (MigrationFile, SkippedEntry))
    if isinstance(parsed, MigrationFile):
        assert 0 <= parsed.version <= MAX_VERSION and parsed.direction in ("up", "down")
    else:
        assert parsed.filename == name and parsed.reason


@settings(max_examples=1000)
@given(NAMES)
def test_parse_filename_reads_exactly_the_files_golang_migrate_reads(name: str) -> None:
    parsed = parse_filename(name)
    match = GOLANG_MIGRATE.fullmatch(name)
    if match is None or int(match[1]) > MAX_VERSION:
        assert isinstance(parsed, SkippedEntry), parsed
    else:
        assert isinstance(parsed, MigrationFile)
        assert (parsed.version, parsed.name, parsed.direction) == (int(match[1]), match[2], match[3])


# --- load_source ---

def test_versions_are_ordered_numerically_not_by_name(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, *pair(10), *pair(2), *pair(1), *pair(0), *pair(20260128001), *pair(9))
    source = load_source(directory)
    assert source.versions == (0, 1, 2, 9, 10, 20260128001)
    assert source.last_version == 20260128001
    assert source.get(9).up.path == directory / "9_m.up.sql"
    assert source.missing_down == () and source.missing_up == ()


def test_zero_padded_version_sorts_as_its_number(tmp_path: Path) -> None:
    source = load_source(make_dir(tmp_path, *pair("0001", "init"), *pair(2), *pair(10)))
    assert source.versions == (1, 2, 10)
    assert source.get(1).label == "1_init"


def test_gaps_and_version_zero_are_kept_as_they_are(tmp_path: Path) -> None:
    source = load_source(make_dir(tmp_path, *pair(0), *pair(5), *pair(100)))
    assert source.versions == (0, 5, 100)
    assert source.get(3) is None


def test_other_entries_are_skipped_and_listed(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, *pair(1), "README.md", "2_b.up.txt", "notes_1.up.sql")
    (directory / "3_archive.up.sql").mkdir()
    source = load_source(directory)
    assert source.versions == (1,)
    skipped = {entry.filename: entry.reason for entry in source.skipped}
    assert set(skipped) == {"README.md", "2_b.up.txt", "notes_1.up.sql", "3_archive.up.sql"}
    assert "not a regular file" in skipped["3_archive.up.sql"]
    assert ".sql" in skipped["2_b.up.txt"]
    assert "VERSION_NAME.up.sql" in skipped["README.md"]


def test_version_beyond_uint64_is_skipped_with_its_reason(tmp_path: Path) -> None:
    too_big = f"{MAX_VERSION + 1}_big.up.sql"
    source = load_source(make_dir(tmp_path, *pair(MAX_VERSION), too_big))
    assert source.versions == (MAX_VERSION,)
    assert [(s.filename, "64-bit" in s.reason) for s in source.skipped] == [(too_big, True)]


def test_duplicate_version_and_direction_is_an_error_naming_both_files(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, "1_a.up.sql", "01_b.up.sql", "1_a.down.sql")
    with pytest.raises(SourceError) as info:
        load_source(directory)
    assert "1_a.up.sql" in str(info.value) and "01_b.up.sql" in str(info.value)
    assert "version 1 up" in str(info.value)


def test_same_version_in_both_directions_is_not_a_duplicate(tmp_path: Path) -> None:
    source = load_source(make_dir(tmp_path, "1_a.up.sql", "01_a.down.sql"))
    assert source.get(1).up.filename == "1_a.up.sql" and source.get(1).down.filename == "01_a.down.sql"


def test_missing_down_and_missing_up_are_flagged(tmp_path: Path) -> None:
    source = load_source(make_dir(tmp_path, *pair(1), "2_only_up.up.sql", "3_only_down.down.sql"))
    assert source.versions == (1, 2, 3)
    assert [m.version for m in source.missing_down] == [2]
    assert [m.version for m in source.missing_up] == [3]
    assert source.get(2).down is None and source.get(3).up is None


def test_trailing_newline_file_is_not_read_as_a_migration(tmp_path: Path) -> None:
    source = load_source(make_dir(tmp_path, *pair(1), "2_x.up.sql\n"))
    assert source.versions == (1,)


@pytest.mark.parametrize(("name", "fragment"), [("absent", "does not exist"), ("file.sql", "is not a directory")])
def test_unusable_directory_is_a_source_error_naming_it(tmp_path: Path, name: str, fragment: str) -> None:
    (tmp_path / "file.sql").write_text("SELECT 1;\n")
    with pytest.raises(SourceError) as info:
        load_source(tmp_path / name)
    assert fragment in str(info.value) and str(tmp_path / name) in str(info.value)


# --- plans ---

@pytest.fixture
def source(tmp_path: Path):
    return load_source(make_dir(tmp_path, *pair(0), *pair(2), *pair(10), "11_no_down.up.sql"))


def moves(steps) -> list[tuple[int, str, int]]:
    return [(s.migration.version, s.direction, s.target) for s in steps]


def test_plan_up_runs_pending_migrations_in_order(source) -> None:
    assert moves(plan_up(source, NIL_VERSION, None)) == [(0, "up", 0), (2, "up", 2), (10, "up", 10), (11, "up", 11)]
    assert moves(plan_up(source, 2, 1)) == [(10, "up", 10)]
    assert plan_up(source, 11, None) == []


@pytest.mark.parametrize(("current", "limit", "fragment"), [
    (NIL_VERSION, 5, "only 4 are pending"),
    (10, 2, "only 1 is pending"),
    (11, 1, "only 0 are pending"),
])
def test_plan_up_beyond_pending_is_a_usage_error_saying_how_many(source, current, limit, fragment) -> None:
    with pytest.raises(UsageError) as info:
        plan_up(source, current, limit)
    assert fragment in info.value.message and f"up {limit}" in info.value.message


def test_plan_down_steps_back_and_the_first_version_targets_nil(source) -> None:
    assert moves(plan_down(source, 10, 2)) == [(10, "down", 2), (2, "down", 0)]
    assert moves(plan_down(source, 11, None)) == [(11, "down", 10), (10, "down", 2), (2, "down", 0), (0, "down", -1)]
    assert moves(plan_down(source, 0, 1)) == [(0, "down", NIL_VERSION)]
    assert plan_down(source, NIL_VERSION, None) == []


def test_down_step_of_a_version_without_down_file_is_a_no_op(source) -> None:
    (step,) = plan_down(source, 11, 1)
    assert step.file is None and step.target == 10
    assert plan_up(source, 10, 1)[0].file.filename == "11_no_down.up.sql"


@pytest.mark.parametrize(("current", "limit", "fragment"), [
    (2, 3, "only 2 are applied"),
    (0, 2, "only 1 is applied"),
    (NIL_VERSION, 1, "only 0 are applied"),
])
def test_plan_down_beyond_applied_is_a_usage_error_saying_how_many(source, current, limit, fragment) -> None:
    with pytest.raises(UsageError) as info:
        plan_down(source, current, limit)
    assert fragment in info.value.message and f"down {limit}" in info.value.message


def test_plan_goto_moves_up_or_down_to_the_target(source) -> None:
    assert moves(plan_goto(source, NIL_VERSION, 2)) == [(0, "up", 0), (2, "up", 2)]
    assert moves(plan_goto(source, 11, 2)) == [(11, "down", 10), (10, "down", 2)]
    assert plan_goto(source, 10, 10) == []


@pytest.mark.parametrize(("target", "nearby"), [(5, "0, 2, 10, 11"), (1000, "10, 11")])
def test_plan_goto_to_a_version_without_file_names_nearby_versions(source, target, nearby) -> None:
    with pytest.raises(UsageError) as info:
        plan_goto(source, 2, target)
    assert f"No migration file has version {target}" in info.value.message
    assert f"Versions near it: {nearby}." in info.value.message


def test_a_file_is_parsed_once_per_command_and_again_when_edited(tmp_path: Path) -> None:
    path = tmp_path / "2_add.up.sql"
    path.write_text("ALTER TABLE users ADD COLUMN age bigint;\n")
    file = MigrationFile(version=2, name="add", direction="up", path=path)
    parsed: dict = {}
    first = read_sql(file, parsed)
    assert read_sql(file, parsed) is first  # the lint's parse serves the run
    path.write_text("ALTER TABLE users ADD COLUMN age bigint NOT NULL DEFAULT 0;\n")
    edited = read_sql(file, parsed)
    assert "DEFAULT 0" in edited.text and edited is not first
