"""A realistic history (``tests/realistic_history.py``: 303 migrations, 576 files) brings an
empty database to its last version with a plain ``migrate up`` in the default configuration;
on a database with data, what is a risk there blocks, and is listed first with its reason on
the Slack card, in ``plan`` and in the CLI. Real PostgreSQL, the real squawk binary."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.slack.blocks.render import render
from bot.cli.main import main
from bot.cli.shell import result_text
from commands import grammar
from commands.config import DEFAULT_REQUIRE_APPROVAL
from commands.executor import Actor, Executor
from commands.lint.findings import blocking_first
from commands.pg.approvals import PgApprovals
from commands.pg.control import migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.tools import Tools, child_env
from commands.approval.results import ApprovalNeeded
from commands.migrate.results import MigrateResult
from commands.results import Outcome
from commands.lint.results import PlanResult
from commands.pg.squawk import SquawkLinter
from tests import realistic_history as history
from tests.conftest import _fresh_database

NOW = datetime(2026, 1, 28, 16, 27, tzinfo=timezone.utc)


@pytest.fixture
def default_bed(make_bed, control_url):
    """The history's folder under an environment configured with the defaults (lint gate at
    ``error``, ``up`` not in require_approval) and an approver, as a team starts out."""
    bed = make_bed(control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                   require_approval=list(DEFAULT_REQUIRE_APPROVAL))
    env = bed.settings.environments["test"]
    assert (env.lint_block_severity, "up" in env.require_approval) == ("error", False)
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            linter=SquawkLinter(), approvals=PgApprovals(control_url))
    history.write(bed.migrations)
    return bed


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


def test_the_history_is_as_large_and_varied_as_real_ones(tmp_path: Path) -> None:
    versions = history.write(tmp_path)
    texts = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert len(versions) > 300 and len(texts) > 550 and versions[:2] == [1, 2] and versions[-1] > 20240101000000
    joined = "\n".join(texts.values())
    for feature in ("BEGIN;", "COMMIT;", "CREATE INDEX CONCURRENTLY", "DO $do$", "$fn$", "CREATE EXTENSION IF NOT",
                    "RENAME COLUMN", "RENAME TO", "DROP COLUMN", "SET NOT NULL", "TYPE bigint", "INSERT INTO"):
        assert feature in joined, feature
    assert any(t == "" for n, t in texts.items() if n.endswith(".up.sql"))
    assert any(t.startswith("--") and t.count("\n") == 1 for n, t in texts.items() if n.endswith(".up.sql"))


def test_a_realistic_history_bootstraps_an_empty_database_with_a_plain_up_in_the_default_configuration(
        default_bed) -> None:
    bed = default_bed
    plan = ask(bed, "migrate plan")
    assert isinstance(plan, PlanResult) and plan.blocking == 0 and plan.outcome is Outcome.DONE
    lowered = [f for p in plan.files for f in p.findings if f.live_judgement is not None]
    assert len(lowered) > 200 and {f.severity for f in lowered} == {"info"}
    drop = next(f for p in plan.files if p.version == history.version_of(4, history.DROP_STEP) for f in p.findings
                if f.rule == "drop-column")
    assert drop.live_judgement == (f"d04_items is created by migration {history.version_of(4, 0)} in this same run: "
                                   "it holds no live data yet")

    result = ask(bed, "migrate up")
    assert isinstance(result, MigrateResult) and result.outcome is Outcome.DONE
    assert bed.state() == (history.versions()[-1], False)
    assert {history.final_name(d) for d in range(history.DOMAINS)} <= bed.tables()
    assert bed.query("SELECT count(*) FROM d00_items_archive WHERE code IS NOT NULL") == [(2,)]


def test_on_a_database_with_data_a_drop_and_a_rename_block_and_are_listed_first_with_their_reason(
        default_bed, tmp_path: Path, capsys) -> None:
    bed = default_bed
    before = len(history.EXTENSIONS) + history.DROP_STEP  # d00_items has all but its drop and rename
    assert isinstance(ask(bed, f"migrate up {before}"), MigrateResult)
    bed.execute("INSERT INTO d00_items (name, status, code, legacy) VALUES ('live', 'new', 'c-live', 'kept')")

    needed = ask(bed, "migrate up")
    assert isinstance(needed, ApprovalNeeded) and bed.state() == (history.version_of(0, history.DROP_STEP - 1), False)
    stopping, rest = blocking_first(needed.request.impact.findings, needed.request.impact.block_severity)
    assert [(f.rule, f.filename) for f in stopping] == [
        ("drop-column", f"{history.version_of(0, history.DROP_STEP)}_drop_legacy_d00_items.up.sql"),
        ("rename-table", f"{history.version_of(0, history.RENAME_STEP)}_rename_d00_items.up.sql")]
    # everything else is on tables this run creates: kept, at info, saying so
    assert all(f.severity != "error" for f in rest)

    message = render(needed, now=NOW, command="/migrate up")
    assert len(message.blocks) <= 50  # Slack's limit, with 292 pending migrations and hundreds of findings
    card = [b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b]
    assert all(len(t) <= 3000 for t in card)
    why = next(i for i, t in enumerate(card) if t.startswith("*These 2 findings are why approval is needed:*"))
    assert not any("findings" in t.lower() for t in card[:why]), "nothing about findings comes before the blocking ones"
    rows = card[why].split("\n")[1:]
    assert "drop-column" in rows[0] and "drops column d00_items.legacy: its data is gone" in rows[0]
    assert "rename-table" in rows[1] and "renames table d00_items to d00_items_archive" in rows[1]
    assert card[why + 1].startswith("*Other lint findings")

    plan_text = result_text(ask(bed, "migrate plan"), command="migrate plan", now=NOW).splitlines()
    assert plan_text[1] == "These 2 findings are why `dbops migrate up` will need approval:"
    assert "error (blocks `up`)" in plan_text[2] and "`drop-column`: drops column d00_items.legacy" in plan_text[2]
    assert "rename-table" in plan_text[3]

    request_text = result_text(needed, command="migrate up", now=NOW).splitlines()
    why_line = request_text.index("These 2 findings are why approval is needed:")
    assert "drop-column" in request_text[why_line + 1] and "rename-table" in request_text[why_line + 2]
    assert not any("lint findings" in line.lower() for line in request_text[:why_line])

    config = tmp_path / "dbops.toml"
    config.write_text('[environments.test]\ndatabase_url = "${TEST_DATABASE_URL}"\n'
                      f'migrations_dir = "{bed.migrations}"\nsnapshot_dir = "snapshots"\nrequire_approval = []\n')
    os.environ["TEST_DATABASE_URL"] = bed.url
    capsys.readouterr()
    try:
        assert main(["migrate", "plan", "--config", str(config)]) == 1
    finally:
        os.environ.pop("TEST_DATABASE_URL", None)
    cli = capsys.readouterr().out.splitlines()
    assert cli[1] == "These 2 findings are why `dbops migrate up` will need approval:" and "drop-column" in cli[2]


@pytest.fixture
def psql_url(server_url: str):
    """Another fresh database, for the files applied by psql."""
    yield from _fresh_database(server_url, "p")


def _schema(url: str) -> str:
    tools = Tools.for_bin_dir(None)
    dump = subprocess.run([tools.path("pg_dump"), "--schema-only", "--no-owner", "--exclude-table=schema_migrations"],
                          env=child_env(url), capture_output=True, text=True, check=True).stdout
    # pg_dump 18 writes a random key in \restrict lines; comments name nothing of the schema
    return "\n".join(line for line in dump.splitlines() if line and not re.match(r"(--|\\(un)?restrict )", line))


def test_dbops_bootstrap_gives_the_schema_that_psql_applying_the_files_in_order_gives(
        default_bed, psql_url) -> None:
    bed = default_bed
    assert isinstance(ask(bed, "migrate up"), MigrateResult)
    psql = Tools.for_bin_dir(None).path("psql")
    for version in history.versions():
        (up,) = bed.migrations.glob(f"{version}_*.up.sql")
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(up)], env=child_env(psql_url),
                       check=True, capture_output=True)
    assert _schema(bed.url) == _schema(psql_url)
