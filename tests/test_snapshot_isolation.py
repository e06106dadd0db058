"""Environments that share one snapshot directory (the guide's /var/lib/togather/db-snapshots
serves development, staging and production): each sees and acts on its own snapshots only,
by name and by manifest; another environment's is restored only where ``restore_from`` allows
it, and then with a second person's approval, said on the card. Real databases, a real
directory, the executor, the CLI and a Slack scenario."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from bot.cli.main import main
from bot.cli.shell import result_text
from commands import grammar
from commands.config import parse_settings
from commands.errors import ConfigError
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.job_runs import PgJobRuns
from commands.snapshot.results import CleanupResult
from commands.results import Outcome, Reason, Refusal
from commands.watch.schedule import CleanupJob
from tests.conftest import Bed, _fresh_database, wait_for
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
         "1_users.down.sql": "DROP TABLE users;"}
CHANNELS = {"development": "C0DEV", "staging": "C0STAGING", "production": "C0INCIDENT"}
LONG_AGO = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Shared:
    """Development, staging and production, each on its own database, one snapshot directory."""

    def __init__(self, urls: dict[str, str], control_url: str, root: Path) -> None:
        self.urls, self.control_url, self.directory = urls, control_url, root / "snapshots"
        migrations = root / "migrations"
        migrations.mkdir()
        for name, text in FILES.items():
            (migrations / name).write_text(text)
        self.document = {"control": {"database_url": control_url}, "environments": {
            env: {"database_url": url, "migrations_dir": str(migrations), "snapshot_dir": str(self.directory),
                  "channels": [CHANNELS[env]], "approvers": ["U0BOB"], "lock_wait_seconds": 2,
                  "require_approval": [], "keep_last": 0}
            for env, url in urls.items()}}
        # As the shipped config: development approves nothing; staging may take production's data.
        self.document["environments"]["staging"]["restore_from"] = ["production"]
        self.document["environments"]["production"]["require_approval"] = ["down", "restore", "cleanup"]
        self.settings = parse_settings(self.document, source="test", base_dir=root, environ={})
        self.clock = Clock()
        self.executor = Executor(self.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                                 audit=PgAuditLog(control_url), approvals=PgApprovals(control_url), clock=self.clock)

    def run(self, text: str, env: str, user: str = "U0ALICE"):
        return self.executor.run(grammar.parse(text), Actor(user=user, channel=CHANNELS[env], surface="slack"))

    def query(self, env: str, query: str) -> list[tuple]:
        with psycopg.connect(self.urls[env], autocommit=True) as conn:
            return conn.execute(query).fetchall()

    def execute(self, env: str, statement: str) -> None:
        with psycopg.connect(self.urls[env], autocommit=True) as conn:
            conn.execute(statement)

    def names(self, env: str) -> list[str]:
        return [s.name for s in self.run(f"snapshot list {env}", env).snapshots]

    def files(self) -> set[str]:
        return {p.name for p in self.directory.iterdir()}

    def config_file(self, path: Path) -> str:
        """The same configuration as a TOML file, for the CLI."""
        lines = [f'[control]\ndatabase_url = "{self.control_url}"\n']
        for env, table in self.document["environments"].items():
            lines.append(f"[environments.{env}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        path.write_text("\n".join(lines) + "\n")
        return str(path)


@pytest.fixture
def shared(server_url, control_url, tmp_path):
    makers = [_fresh_database(server_url, "t") for _ in CHANNELS]
    urls = dict(zip(CHANNELS, (next(m) for m in makers)))
    migrate_control_database(control_url)
    bed = Shared(urls, control_url, tmp_path)
    for env in CHANNELS:
        assert bed.run(f"migrate up {env}", env).outcome is Outcome.DONE  # each takes its own snapshot first
        bed.execute(env, f"INSERT INTO users VALUES (1, '{env}@example.com')")
        bed.run(f'snapshot create {env} --reason "nightly"', env)
    yield bed
    for maker in makers:
        next(maker, None)


def copy_as(shared: Shared, source: str, name: str) -> None:
    """Copy snapshot ``source`` (both files) under another name, as someone with a shell might."""
    for suffix in (".dump.zst", ".manifest.json"):
        shutil.copy(shared.directory / f"{source}{suffix}", shared.directory / f"{name}{suffix}")


def test_development_cleanup_never_deletes_production_snapshots(shared):
    production = shared.names("production")
    development = shared.names("development")
    legacy = shared.directory / "togather_production_20260101_000000_before_deploy.sql.gz"
    legacy.write_bytes(gzip.compress(b"-- PostgreSQL database dump\n"))
    # A production snapshot renamed into development's name: its manifest still says production.
    renamed = "development_20260101_000000_vnone_copied-by-hand"
    copy_as(shared, production[0], renamed)
    shared.clock.now += timedelta(days=30)

    result = shared.run("snapshot cleanup development --retention-days 0", "development")

    nightly, before_migration = development
    assert isinstance(result, CleanupResult) and result.outcome is Outcome.DONE
    assert [s.name for s in result.deleted] == [nightly]
    assert {s.name: why for s, why in result.kept} == {before_migration: "the newest taken before version 1",
                                                       renamed: "its manifest does not say it is development's"}
    files = shared.files()
    for name in production:
        assert {f"{name}.dump.zst", f"{name}.manifest.json"} <= files
    assert legacy.name in files and f"{renamed}.dump.zst" in files
    assert shared.names("production") == production + [legacy.name.removesuffix(".sql.gz")]


def test_list_shows_only_the_environments_own_snapshots(shared):
    (shared.directory / "togather_development_20260101_000000_seed.sql.gz").write_bytes(gzip.compress(b"SET x;"))

    listed = {env: shared.names(env) for env in CHANNELS}

    for env, names in listed.items():
        assert names and all(n.startswith(f"{env}_") or n.startswith(f"togather_{env}_") for n in names), (env, names)
    assert "togather_development_20260101_000000_seed" in listed["development"]
    assert len({n for names in listed.values() for n in names}) == sum(len(n) for n in listed.values())
    status = shared.run("migrate status development", "development")
    assert status.newest_snapshot.name.startswith("development_")


def test_pin_verify_and_restore_of_another_environments_snapshot_are_refused_naming_restore_from(shared, tmp_path,
                                                                                                    capsys):
    name = shared.names("production")[0]
    config = shared.config_file(tmp_path / "dbops.toml")
    before = shared.files()

    assert main(["snapshot", "restore", name, "development", "--config", config]) == 3
    out = capsys.readouterr().out
    assert f"snapshot `{name}` does not belong to development" in out
    assert 'add `"production"` to `restore_from` under `[environments.development]`' in out
    assert main(["snapshot", "pin", name, "development", "--config", config]) == 3
    assert f"dbops snapshot pin {name} production" in capsys.readouterr().out
    assert main(["snapshot", "verify", name, "development", "--config", config]) == 3

    assert shared.files() == before  # no marker, no safety snapshot
    assert shared.query("development", "SELECT email FROM users") == [("development@example.com",)]
    with psycopg.connect(shared.control_url, autocommit=True) as conn:
        outcomes = conn.execute("SELECT environment, command, outcome FROM dbops_audit_log "
                                "WHERE command LIKE 'snapshot %' AND outcome = 'refused' "
                                "ORDER BY id").fetchall()
    assert outcomes == [("development", "snapshot restore", "refused"), ("development", "snapshot pin", "refused"),
                        ("development", "snapshot verify", "refused")]


def test_a_snapshot_renamed_into_an_environment_is_refused_by_its_manifest(shared):
    renamed = "development_20260101_000000_vnone_copied-by-hand"
    copy_as(shared, shared.names("production")[0], renamed)
    assert renamed in shared.names("development")  # listing trusts the name …

    refused = shared.run(f"snapshot restore {renamed}", "development")

    assert isinstance(refused, Refusal) and refused.reason is Reason.MANIFEST_MISMATCH  # … acting reads the manifest
    assert (refused.owner, refused.claimants) == ("development", ("production",))
    assert "its manifest names production" in result_text(refused, command="snapshot restore")
    assert shared.query("development", "SELECT email FROM users") == [("development@example.com",)]


def test_an_allowed_cross_environment_restore_needs_staging_approval_and_the_card_says_so(shared):
    name = shared.names("production")[0]
    with FakeSlack() as fake:
        bed = Bed(url=shared.urls["staging"], migrations=Path(), settings=shared.settings, executor=shared.executor)
        with serving(bed, fake, shared.control_url) as scenario:
            status, _, _ = scenario.command(f"restore {name} staging", command="/snapshot", channel="C0STAGING")
            assert status == 200
            card = fake.wait_for_message("C0STAGING", lambda m: "Approve" in text_of(m))
            shown = text_of(card)
            assert "It is a snapshot of production" in shown and "the data of *production* replaces" in shown
            assert shared.query("staging", "SELECT email FROM users") == [("staging@example.com",)]

            body = press_button(card, "Approve", user_id="U0BOB",
                                response_url=fake.response_url(channel="C0STAGING", user="U0BOB", message_ts=card.ts))
            assert scenario.post(body, sign(SECRET, body))[0] == 200
            wait_for(lambda: shared.query("staging", "SELECT email FROM users") == [("production@example.com",)],
                     what="production's rows in staging")
    assert shared.query("production", "SELECT email FROM users") == [("production@example.com",)]


def test_scheduled_cleanup_of_development_leaves_production_snapshots(shared):
    production, development = shared.names("production"), shared.names("development")
    env = shared.settings.environment("development")
    job = CleanupJob(shared.executor, PgJobRuns(shared.control_url), owner="replica-1")
    occurrence = (shared.clock.now + timedelta(days=30)).replace(second=0, microsecond=0)

    notice = job.tick(env, occurrence=occurrence, now=occurrence - timedelta(minutes=30))
    shared.clock.now = occurrence
    report = job.tick(env, occurrence=occurrence, now=occurrence + timedelta(seconds=5))

    nightly, before_migration = development
    assert [s.name for s in notice[0].delete] == [nightly]
    assert [s.name for s in report[0].result.deleted] == [nightly]
    assert shared.names("production") == production and shared.names("development") == [before_migration]


def test_legacy_snapshots_belong_to_the_one_environment_their_name_answers_to(tmp_path):
    directory = tmp_path / "snapshots"
    directory.mkdir()
    # Two hosts, each database called togather: "togather" answers to both environments.
    settings = parse_settings({"environments": {
        env: {"database_url": f"postgresql://u@db-{env}.invalid/togather", "migrations_dir": str(tmp_path),
              "snapshot_dir": str(directory), "require_approval": []}
        for env in ("development", "production")}}, source="test", base_dir=tmp_path, environ={})
    executor = Executor(settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter())
    for name in ("togather_production_20260101_000000_x", "togather_togather_20260101_000000_x"):
        (directory / f"{name}.sql.gz").write_bytes(gzip.compress(b"SET x;"))

    def run(text: str):
        return executor.run(grammar.parse(text), Actor(user="alice"))

    assert [s.name for s in run("snapshot list production").snapshots] == ["togather_production_20260101_000000_x"]
    assert run("snapshot list development").snapshots == ()
    refused = run("snapshot pin togather_togather_20260101_000000_x production")
    assert refused.reason is Reason.UNCLAIMED_SNAPSHOT and refused.claimants == ("development", "production")
    assert "answers to development and production" in result_text(refused, command="snapshot pin")
    assert run("snapshot pin togather_production_20260101_000000_x development").reason is Reason.OTHER_ENVIRONMENT
    assert sorted(p.name for p in directory.iterdir()) == ["togather_production_20260101_000000_x.sql.gz",
                                                          "togather_togather_20260101_000000_x.sql.gz"]


@pytest.mark.parametrize("value, message", [
    ('["prod"]', "restore_from names 'prod', which is not a configured environment. Other environments: staging"),
    ('["production"]', "restore_from names production itself"),
])
def test_restore_from_must_name_another_configured_environment(tmp_path, value, message):
    text = "".join(f'[environments.{env}]\ndatabase_url = "postgresql://u@db/{env}"\nmigrations_dir = "m"\n'
                   f'snapshot_dir = "s"\n' for env in ("production", "staging"))
    path = tmp_path / "dbops.toml"
    path.write_text(text.replace('snapshot_dir = "s"\n', f'snapshot_dir = "s"\nrestore_from = {value}\n', 1))
    with pytest.raises(ConfigError, match=message):
        from commands.config import load_settings
        load_settings(path, environ={})
