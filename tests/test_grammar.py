"""parse(): every /migrate form in DESIGN.md, its errors, and that it never raises anything else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import grammar
from commands import usage
from commands.errors import UsageError
from commands.grammar import (MigrateDown, MigrateDryRun, MigrateForce, MigrateGoto, MigrateStatus, MigrateUp,
                              MigrateValidate, parse)

MAX_VERSION = 2**64 - 1
ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def usage_error(text: str | list[str]) -> UsageError:
    with pytest.raises(UsageError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(("text", "expected"), [
    ("migrate status", MigrateStatus()),
    ("migrate status production", MigrateStatus(env="production")),
    ("migrate validate staging", MigrateValidate(env="staging")),
    ("migrate up", MigrateUp()),
    ("migrate up 2", MigrateUp(steps=2)),
    ("migrate up production", MigrateUp(env="production")),
    ("migrate up 2 production", MigrateUp(env="production", steps=2)),
    ("migrate down 1", MigrateDown(steps=1)),
    ("migrate down 3 production", MigrateDown(env="production", steps=3)),
    ("migrate down --all", MigrateDown(steps=None)),
    ("migrate down --all production", MigrateDown(env="production", steps=None)),
    ("migrate goto 20260128001", MigrateGoto(version=20260128001)),
    ("migrate goto 0 production", MigrateGoto(env="production", version=0)),
    (f"migrate goto {MAX_VERSION}", MigrateGoto(version=MAX_VERSION)),
    ("migrate force 5", MigrateForce(version=5)),
    ("migrate force -1", MigrateForce(version=-1)),
    ("migrate force -1 production", MigrateForce(env="production", version=-1)),
    ("migrate dry-run", MigrateDryRun()),
    ("migrate dry-run 3 staging", MigrateDryRun(env="staging", steps=3)),
    ("migrate up 1000000", MigrateUp(steps=1_000_000)),
])
def test_every_migrate_form_parses_to_its_command(text: str, expected: grammar.Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("positional", "flagged"), [
    ("migrate up 2 production", "migrate up 2 --env production"),
    ("migrate up 2 production", "migrate up 2 --env=production"),
    ("migrate up 2 production", "migrate up --env production 2"),
    ("migrate down 1 staging", "migrate down --env=staging 1"),
    ("migrate down --all staging", "migrate down --env staging --all"),
    ("migrate force -1 production", "migrate force -1 --env production"),
    ("migrate status production", "migrate status --env=production"),
])
def test_env_option_is_equivalent_to_positional_env(positional: str, flagged: str) -> None:
    assert parse(positional) == parse(flagged)
    assert parse(positional.split()) == parse(flagged.split())  # the CLI passes argv tokens


def test_leading_slash_and_upper_case_are_accepted() -> None:
    assert parse("/migrate up 2 production") == MigrateUp(env="production", steps=2)
    assert parse("/MIGRATE Status") == MigrateStatus()


def test_slack_smart_quotes_are_read_as_quotes() -> None:
    assert parse("migrate up \u201cproduction\u201d") == MigrateUp(env="production")
    assert parse("migrate down \u20182\u2019 staging") == MigrateDown(env="staging", steps=2)


def test_plan_takes_only_an_environment() -> None:
    assert parse("migrate plan production") == grammar.MigratePlan(env="production")
    assert parse("migrate plan") == grammar.MigratePlan()
    assert "Too many arguments" in usage_error("migrate plan 2 production").message


def test_doctor_takes_only_an_environment_in_slack_and_in_the_shell() -> None:
    assert parse("/dbops doctor production") == grammar.DbopsDoctor(env="production")
    assert parse("dbops doctor") == grammar.DbopsDoctor()
    assert parse(["doctor", "--env", "staging"]) == parse(["doctor", "staging"]) == grammar.DbopsDoctor(env="staging")
    assert "Too many arguments" in usage_error("dbops doctor 2 production").message
    assert grammar.canonical(grammar.DbopsDoctor(), "production") == "dbops doctor production"
    assert not grammar.changes_state(grammar.DbopsDoctor())


def test_unknown_verb_is_a_usage_error_with_the_migrate_usage() -> None:
    error = usage_error("migrate upp")
    assert "'upp'" in error.message and error.usage == (
        "migrate status|validate|up|down|goto|force|baseline|dry-run|plan|drift|unblock …",)


@pytest.mark.parametrize("text", ["migrate down", "migrate down --env production", "/migrate down --env=staging"])
def test_down_without_n_says_it_must_be_explicit(text: str) -> None:
    error = usage_error(text)
    assert "explicit" in error.message and error.usage == usage.MIGRATE["down"]


def test_down_with_only_an_env_reads_it_as_the_missing_n() -> None:
    error = usage_error("migrate down production")
    assert "'production' is not a number of migrations" in error.message
    assert error.usage == usage.MIGRATE["down"]


@pytest.mark.parametrize(("text", "fragment", "verb"), [
    ("migrate goto abc", "'abc' is not a migration version", "goto"),
    ("migrate goto 1.5", "'1.5' is not a migration version", "goto"),
    ("migrate goto -1", "'-1' is not a migration version", "goto"),
    ("migrate force -2", "'-2' is not a migration version", "force"),
    (f"migrate goto {MAX_VERSION + 1}", "larger than any golang-migrate version", "goto"),
    (f"migrate force {MAX_VERSION + 1}", "larger than any golang-migrate version", "force"),
    ("migrate goto", "goto needs a version", "goto"),
    ("migrate goto production", "'production' is not a migration version", "goto"),
    ("migrate force --env production", "force needs a version", "force"),
    ("migrate up 0", "between 1 and 1,000,000", "up"),
    ("migrate down 0", "between 1 and 1,000,000", "down"),
    ("migrate dry-run 1000001", "between 1 and 1,000,000", "dry-run"),
    ("migrate up -1", "is not a number of migrations", "up"),
    ("migrate up 2 --env production staging", "given twice", "up"),
    ("migrate up production --env staging", "given twice", "up"),
    ("migrate up --env production --env=staging", "given twice", "up"),
    ("migrate up --env", "--env needs an environment name", "up"),
    ("migrate up --env=", "--env needs an environment name", "up"),
    ("migrate up --force", "Unknown option '--force'", "up"),
    ("migrate up --all", "Unknown option '--all'", "up"),
    ("migrate down 2 --all", "either N or --all", "down"),
    ("migrate up 1 2", "Too many arguments", "up"),
    ("migrate status Production", "'Production' is not an environment name", "status"),
    ("migrate status prod/../x", "is not an environment name", "status"),
])
def test_bad_arguments_are_usage_errors_with_the_verbs_usage_line(text: str, fragment: str, verb: str) -> None:
    error = usage_error(text)
    assert fragment in error.message
    assert error.usage == usage.MIGRATE[verb]
    assert f"Usage: {usage.MIGRATE[verb][0]}" in str(error)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_is_a_usage_error(text: str) -> None:
    error = usage_error(text)
    assert error.message == "Empty command." and error.usage == usage.MIGRATE_GROUP


def test_bare_migrate_asks_which_command() -> None:
    assert usage_error("/migrate").usage == usage.MIGRATE_GROUP


def test_unbalanced_quote_is_a_usage_error_with_a_usage_line() -> None:
    error = usage_error('migrate up "production')
    assert "quotation" in error.message
    assert error.usage is not None and "Usage:" in str(error)


def test_huge_number_is_a_usage_error_not_a_crash() -> None:
    # int() refuses strings of more than 4300 digits (Python 3.11+): that must not escape as ValueError.
    assert "number" in usage_error("migrate up " + "9" * 5000).message
    assert "version" in usage_error("migrate goto " + "9" * 5000).message


@pytest.mark.parametrize("text", ['migrate status "production\n"', 'migrate up 2 --env="staging\n"',
                                  ["migrate", "status", "production\n"]])
def test_env_with_trailing_newline_is_not_an_environment_name(text: str | list[str]) -> None:
    assert "is not an environment name" in usage_error(text).message


def test_long_garbage_token_is_shortened_in_the_message() -> None:
    error = usage_error("migrate goto " + "x" * 500)
    assert len(error.message) < 120 and "…" in error.message


def test_many_extra_arguments_keep_the_message_short() -> None:
    error = usage_error("migrate up " + " ".join(str(n) for n in range(1, 200)))
    assert "Too many arguments" in error.message and len(error.message) <= 300


# --- properties: whatever the input, a Command or a short UsageError, nothing else ---

TOKENS = st.one_of(
    st.sampled_from(["migrate", "/migrate", "up", "down", "goto", "force", "dry-run", "status", "validate",
                     "plan", "--env", "--env=production", "--all", "-1", "0", "1", "2", str(MAX_VERSION),
                     str(MAX_VERSION + 1), "production", "staging", "\u201c", "'", '"', "\\"]),
    st.text(max_size=60),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def check(text: str | list[str]) -> None:
    try:
        command = parse(text)
    except UsageError as err:
        assert err.message and len(err.message) <= 300, err.message
    else:
        assert isinstance(command, grammar.COMMANDS)
        assert command.env is None or ENV_NAME.fullmatch(command.env), command


@settings(max_examples=500)
@given(st.one_of(st.text(), st.text().map(lambda s: "migrate " + s), st.lists(TOKENS, max_size=8).map(" ".join)))
def test_any_text_parses_to_a_command_or_a_short_usage_error(text: str) -> None:
    check(text)


@settings(max_examples=500)
@given(st.lists(TOKENS, max_size=8).map(lambda tokens: ["migrate", *tokens]))
def test_any_token_list_parses_to_a_command_or_a_short_usage_error(tokens: list[str]) -> None:
    check(tokens)
