"""Configuration values that a loose check let through and that broke things later: numbers
with no ceiling (inf, nan, 1e10 made every `up` fail), a duration PostgreSQL reads but
PGOPTIONS splits ("10 s" made every restore fail), and paths that are loops of symbolic links
(at load, and once the bot is running)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from bot.cli.main import main
from commands.config import EnvironmentSettings, Settings, load_settings
from commands.errors import CommandError, ConfigError
from commands.pg.tools import Tools, bundled_bin_dir, child_env
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = ('[environments.production]\ndatabase_url = "postgresql://u@db/app"\nmigrations_dir = "migrations"\n'
           'snapshot_dir = "snapshots"\napprovers = ["S0DBAS"]\n')
# Every number in the configuration, with the range it must be in: (section, key) -> (lowest, highest).
BOUNDS = {
    ("environments.production", "approval_ttl_seconds"): (1, 604800),
    ("environments.production", "retention_days"): (0, 3650),
    ("environments.production", "keep_last"): (0, 1000),
    ("environments.production", "cleanup_notice_minutes"): (0, 1440),
    ("environments.production", "dirty_check_seconds"): (1, 3600),
    ("environments.production", "dirty_reminder_minutes"): (1, 1440),
    ("environments.production", "stale_lock_minutes"): (0, 1440),
    ("environments.production", "lock_dir_timeout_minutes"): (0, 1440),
    ("environments.production", "disk_alert_percent"): (1, 100),
    ("environments.production", "lock_wait_seconds"): (0.001, 3600),
    ("environments.production", "lock_retries"): (0, 100),
    ("environments.production", "lock_retry_seconds"): (0.01, 600),
    ("environments.production", "blocker_wait_seconds"): (0, 3600),
    ("environments.production", "snapshot_compression_level"): (1, 19),
    ("environments.production", "lint_large_table_mb"): (0, 10000000),
    ("environments.production", "drill_max_age_days"): (0, 3650),
    ("environments.production", "app_hook_timeout_seconds"): (0.1, 600),
    ("environments.production", "app_health_wait_seconds"): (0, 3600),
    ("control", "heartbeat_seconds"): (0.1, 600),
}


def config_with(tmp_path: Path, section: str, line: str) -> Path:
    text = MINIMAL + line + "\n" if section.startswith("environments") else f"[{section}]\n{line}\n" + MINIMAL
    path = tmp_path / "dbops.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    return str(info.value)


def test_every_number_in_the_configuration_has_a_range():
    numbers = {("environments.production", f.name) for f in dataclasses.fields(EnvironmentSettings)
               if f.type in ("int", "float")}
    numbers |= {("control", f.name) for f in dataclasses.fields(Settings) if f.type in ("int", "float")}
    assert numbers == set(BOUNDS)


@pytest.mark.parametrize(("section", "key"), sorted(BOUNDS))
def test_a_number_past_its_range_is_refused_at_load_naming_the_key_and_its_range(tmp_path, section, key):
    low, high = BOUNDS[(section, key)]
    for bad in (high * 10, low - 1, 10**12):
        message = load_error(config_with(tmp_path, section, f"{key} = {bad}"))
        assert f"{section}.{key} must be" in message and f"from {low} to {high}" in message, message
    for good in (low, high):
        load_settings(config_with(tmp_path, section, f"{key} = {good}"), environ={})


@pytest.mark.parametrize(("section", "key"), [("environments.production", "lock_wait_seconds"),
                                              ("control", "heartbeat_seconds")])
@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e10"])
def test_infinite_not_a_number_and_huge_seconds_are_refused_at_load(tmp_path, section, key, bad):
    message = load_error(config_with(tmp_path, section, f"{key} = {bad}"))
    assert f"{section}.{key} must be a number of seconds" in message and str(tmp_path) in message


def test_the_configuration_reference_states_every_range():
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for (_, key), (low, high) in BOUNDS.items():
        row = next(line for line in reference.splitlines() if line.startswith(f"| `{key}` |"))
        assert f"{low}–{high}" in row, row


@pytest.mark.parametrize("key", ["lock_timeout", "statement_timeout"])
def test_a_duration_with_a_space_is_refused_at_load_with_the_spelling_that_works(tmp_path, key):
    message = load_error(config_with(tmp_path, "environments.production", f'{key} = "10 s"'))
    assert f"environments.production.{key} must be a PostgreSQL duration" in message
    assert 'write "10s", without the space' in message


@pytest.mark.parametrize(("line", "why"), [
    ('lock_timeout = "2h"', 'at most "1h"'),
    ('statement_timeout = "8d"', 'at most "7d"'),
    ('lock_timeout = "0.1us"', "rounds to 0"),
    ('lock_timeout = "10S"', "PostgreSQL duration"),
    ('lock_timeout = "-1s"', "PostgreSQL duration"),
    ('lock_timeout = "10s -c log_statement=all"', "PostgreSQL duration"),
    ("lock_timeout = 1e10", "PostgreSQL duration"),
])
def test_a_duration_postgresql_would_refuse_or_read_as_no_limit_is_refused_at_load(tmp_path, line, why):
    message = load_error(config_with(tmp_path, "environments.production", line))
    assert f"environments.production.{line.split()[0]} must be" in message and why in message


@pytest.mark.parametrize(("written", "postgres_shows"), [
    ('"10s"', "10s"), ('" 500ms "', "500ms"), ('"1min"', "1min"), ('"1.5s"', "1500ms"), ('"1500us"', "2ms"),
    ("10000", "10s"), ('"0"', "0"), ('"1h"', "1h"),
])
def test_every_accepted_duration_reaches_postgresql_intact_through_pgoptions(tmp_path, database_url, written,
                                                                              postgres_shows):
    env = load_settings(config_with(tmp_path, "environments.production", f"lock_timeout = {written}"),
                        environ={}).environment("production")
    assert " " not in env.lock_timeout
    # As a restore starts psql: the setting in PGOPTIONS, which libpq splits on spaces.
    shown = subprocess.run([Tools(bundled_bin_dir()).path("psql"), "--no-psqlrc", "-tAc", "SHOW lock_timeout"],
                           env=child_env(database_url, options=f"-c lock_timeout={env.lock_timeout}"),
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == postgres_shows


# --- loops of symbolic links ----------------------------------------------------------------------

def loop(path: Path) -> Path:
    """A symbolic link to itself: every lookup through it fails with ELOOP."""
    path.symlink_to(path.name)
    return path


@pytest.mark.parametrize(("key", "value"), [
    ("migrations_dir", '"loop/migrations"'), ("snapshot_dir", '"loop"'), ("pg_bin_dir", '"loop/bin"'),
    ("deployment_state_file", '"loop/deployment-state.json"'), ("lock_dirs", '["loop/m.lock"]'),
])
def test_a_path_through_a_symlink_loop_is_refused_at_load_naming_the_key(tmp_path, capsys, key, value):
    loop(tmp_path / "loop")
    text = re.sub(rf"^{key} = .*\n", "", MINIMAL, flags=re.M) + f"{key} = {value}\n"
    path = tmp_path / "dbops.toml"
    path.write_text(text, encoding="utf-8")

    assert main(["migrate", "status", "--config", str(path)]) == 2

    err = capsys.readouterr().err
    assert f"environments.production.{key}" in err and "symbolic links" in err and str(path) in err
    assert "internal error" not in err


@pytest.fixture
def running(make_bed, control_url):
    """A bot serving an environment whose paths were fine when it started."""
    with FakeSlack() as fake:
        bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);"}, control=control_url,
                       channels=["C0INCIDENT"])
        bed.run("migrate up")
        with serving(bed, fake, control_url) as scenario:
            yield scenario


def test_a_migrations_dir_that_becomes_a_loop_makes_status_and_health_say_so(running):
    migrations = running.bed.migrations
    migrations.rename(migrations.with_name("migrations.moved"))
    loop(migrations)

    _, _, url = running.command("status")
    reply = text_of(running.reply(url))
    status, health = running.health()

    assert f"Migrations directory {migrations} cannot be read: Too many levels of symbolic links" in reply
    assert status == 503
    check = health["environments"]["test"]["checks"]["migrations"]
    # /health answers strangers: the verdict only, the reason stays in the (masked) log.
    assert check["status"] == "fail" and check["message"] == "migration files unreadable"


def test_a_snapshot_dir_that_becomes_a_loop_makes_status_say_so(make_bed):
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);"})
    bed.run("migrate up")
    snapshots = bed.settings.environment("test").snapshot_dir
    snapshots.rename(snapshots.with_name("snapshots.moved"))
    loop(snapshots)

    with pytest.raises(CommandError) as info:
        bed.run("migrate status")
    assert f"Snapshot directory {snapshots} cannot be read: Too many levels of symbolic links" in info.value.message


def test_a_lock_dir_under_a_loop_stops_up_with_a_clear_error_and_changes_nothing(make_bed, tmp_path):
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int);"}, lock_dirs=[str(tmp_path / "locks" / "m.lock")],
                   pre_migration_snapshot=False)
    loop(tmp_path / "locks")

    with pytest.raises(CommandError) as info:
        bed.run("migrate up")
    assert "Lock directory" in info.value.message and "Too many levels of symbolic links" in info.value.message
    assert bed.state() is None


def test_preserve_names_each_tables_time_columns_and_refuses_anything_else(tmp_path):
    good = config_with(tmp_path, "environments.production",
                       'preserve = { orders = ["placed_at"], "billing.invoices" = ["issued_at", "paid_at"] }')
    env = load_settings(good, environ={}).environment("production")
    assert dict(env.preserve) == {"orders": ("placed_at",), "billing.invoices": ("issued_at", "paid_at")}
    message = load_error(config_with(tmp_path, "environments.production", 'preserve = { orders = "placed_at" }'))
    assert "environments.production.preserve must be a table of table names, each a list of column names" in message
