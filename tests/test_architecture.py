"""The dependency rules of DESIGN.md, checked with import-linter on every test run."""

from importlinter.cli import lint_imports


def test_import_contracts_hold():
    # bot -> commands only; commands never imports Slack, the scheduler or bot; only
    # commands.pg touches psycopg and PostgreSQL's tools.
    assert lint_imports(config_filename="pyproject.toml") == 0
