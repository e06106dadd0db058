"""load_settings: one TOML file, ${VAR} expanded, every key checked, errors name key and file."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from commands.config import DEFAULT_REQUIRE_APPROVAL, load_settings
from commands.errors import ConfigError
from commands.redact import redact

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "dbops.example.toml"
ENVIRON = {
    "DBOPS_CONTROL_DATABASE_URL": "postgresql://u:pw@ctl/dbops",
    "PRODUCTION_DATABASE_URL": "postgresql://u:secret@db/togather",
}
MINIMAL = ('[environments.production]\ndatabase_url = "postgresql://u@db/app"\nmigrations_dir = "migrations"\n'
           'snapshot_dir = "snapshots"\napprovers = ["S0DBAS"]\n')


def write(tmp_path: Path, text: str, name: str = "dbops.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={} if environ is None else environ)
    return str(info.value)


def test_example_config_loads_with_every_value_as_written(tmp_path: Path) -> None:
    path = tmp_path / "dbops.toml"
    shutil.copy(EXAMPLE, path)
    settings = load_settings(path, environ=ENVIRON)
    assert settings.path == path
    assert settings.control_database_url == "postgresql://u:pw@ctl/dbops"
    assert settings.alerts_channel == "C0ALERTS"
    assert list(settings.environments) == ["production"]
    prod = settings.environment("production")
    assert prod.name == "production"
    assert prod.database_url == "postgresql://u:secret@db/togather"
    assert prod.migrations_dir == (tmp_path / "internal/storage/postgres/migrations").resolve()
    assert prod.snapshot_dir == Path("/var/lib/togather/db-snapshots")
    assert prod.migrations_table == "schema_migrations"
    assert prod.migrations_schema is None
    assert prod.channels == ("C0INCIDENT",)
    assert prod.operators == ()
    assert prod.approvers == ("U0ALICE", "S0DBAS")
    assert prod.require_approval == ("down", "goto", "force", "restore", "cleanup", "lock-release", "up", "dry-run",
                                     "unblock", "reimport")
    assert prod.approval_ttl_seconds == 900
    assert prod.retention_days == 7
    assert prod.keep_last == 3
    assert prod.cleanup_schedule == "0 3 * * *"
    assert prod.dirty_check_seconds == 30
    assert prod.lock_dirs == (Path("/tmp/togather-migration-production.lock"),)
    assert prod.health_url == "http://localhost:8080/health"
    assert prod.lock_wait_seconds == 15.0
    assert prod.lock_timeout == "2s"
    assert (prod.lock_retries, prod.lock_retry_seconds, prod.blockers, prod.blocker_wait_seconds) == (5, 1.0, "wait", 60.0)
    assert prod.statement_timeout == "0"
    assert prod.pre_migration_snapshot is True
    assert settings.cli_users == {"alice": "U0ALICE"}


def test_minimal_environment_gets_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    prod = settings.environment("production")
    assert settings.control_database_url is None and settings.alerts_channel is None
    assert prod.require_approval == DEFAULT_REQUIRE_APPROVAL and "up" not in prod.require_approval
    assert (prod.migrations_table, prod.retention_days, prod.lock_timeout) == ("schema_migrations", 7, "2s")
    assert (prod.lock_retries, prod.blockers) == (5, "wait") and "unblock" in prod.require_approval


def test_dollar_brace_variables_expand_inside_strings_and_lists(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('"postgresql://u@db/app"', '"postgresql://${DB_USER}@${DB_HOST}/app"')
                 + 'channels = ["${CHANNEL}", "C2"]\n')
    prod = load_settings(path, environ={"DB_USER": "deploy", "DB_HOST": "db.internal", "CHANNEL": "C1"}) \
        .environment("production")
    assert prod.database_url == "postgresql://deploy@db.internal/app"
    assert prod.channels == ("C1", "C2")


def test_missing_variable_is_an_error_naming_variable_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('"postgresql://u@db/app"', '"${PRODUCTION_DATABASE_URL}"'))
    message = config_error(path)
    assert "PRODUCTION_DATABASE_URL" in message
    assert "environments.production.database_url" in message
    assert str(path) in message


def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "retention_day = 7\n")
    message = config_error(path)
    assert "environments.production.retention_day" in message and str(path) in message
    assert "retention_days" in message  # the allowed keys are listed, so the typo is obvious


def test_unknown_section_is_an_error_naming_section_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[slak]\nalerts_channel = \"C1\"\n" + MINIMAL)
    message = config_error(path)
    assert "[slak]" in message and str(path) in message


def test_unknown_key_in_control_section_is_an_error(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[control]\nurl = "postgresql://c/ctl"\n' + MINIMAL))
    assert "control.url" in message


@pytest.mark.parametrize(("line", "key"), [
    ('retention_days = "7"', "retention_days"),
    ('channels = "C1"', "channels"),
    ('require_approval = ["up", "drop"]', "require_approval"),
    ('cleanup_schedule = "0 3 * *"', "cleanup_schedule"),
    ('cleanup_schedule = "daily"', "cleanup_schedule"),
    ('cleanup_schedule = "61 25 * * *"', "cleanup_schedule"),
    ('cleanup_schedule = "*/0 * * * *"', "cleanup_schedule"),
    ('approval_ttl_seconds = 0', "approval_ttl_seconds"),
    ('keep_last = true', "keep_last"),
    ('lock_wait_seconds = -1', "lock_wait_seconds"),
    ('lock_timeout = "ten seconds"', "lock_timeout"),
    ('pre_migration_snapshot = "yes"', "pre_migration_snapshot"),
    ('migrations_table = "schema migrations; drop"', "migrations_table"),
    ('operators = ["U1", ""]', "operators"),
])
def test_wrong_value_is_an_error_naming_key_and_file(tmp_path: Path, line: str, key: str) -> None:
    path = write(tmp_path, MINIMAL + line + "\n")
    message = config_error(path)
    assert f"environments.production.{key}" in message and str(path) in message


def test_cli_users_map_operating_system_accounts_to_slack_ids(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[cli]\nusers = { "alice" = "U0ALICE", "deploy-bot" = "W0DEPLOY" }\n'
                                             + MINIMAL), environ={})
    assert settings.cli_users == {"alice": "U0ALICE", "deploy-bot": "W0DEPLOY"}
    assert load_settings(write(tmp_path, MINIMAL), environ={}).cli_users == {}


@pytest.mark.parametrize(("text", "named"), [
    ('[cli]\nuser = { "alice" = "U0ALICE" }\n', "unknown key 'cli.user'"),
    ('[cli]\nusers = ["alice"]\n', "cli.users must be a table of operating-system account names to Slack user ids"),
    ('[cli]\nusers = { "alice" = "alice" }\n', "'alice' maps to 'alice', which is not a Slack user id"),
    ('[cli]\nusers = { "alice" = "S0DBAS" }\n', "'alice' maps to 'S0DBAS', which is not a Slack user id"),
    ('[cli]\nusers = { "alice" = 7 }\n', "'alice' maps to 7, which is not a Slack user id"),
    ('[cli]\nusers = { "al ice" = "U0ALICE" }\n', "'al ice' is not an account name"),
    ('[cli]\nusers = { "../root" = "U0ALICE" }\n', "'../root' is not an account name"),
])
def test_a_bad_cli_users_table_is_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text + MINIMAL)
    message = config_error(path)
    assert named in message and str(path) in message


def test_a_missing_snapshot_dir_is_an_error_unless_snapshots_are_off(tmp_path: Path) -> None:
    without = MINIMAL.replace('snapshot_dir = "snapshots"\n', "")
    message = config_error(write(tmp_path, without))
    assert "environments.production.snapshot_dir is required" in message and "pre_migration_snapshot" in message
    settings = load_settings(write(tmp_path, without + "pre_migration_snapshot = false\n"), environ=ENVIRON)
    assert settings.environment("production").snapshot_dir is None


def test_valid_cron_forms_are_accepted(tmp_path: Path) -> None:
    for schedule in ("0 3 * * *", "*/15 0-6 1,15 * 1-5", "30 2 * * 0"):
        settings = load_settings(write(tmp_path, MINIMAL + f'cleanup_schedule = "{schedule}"\n'), environ=ENVIRON)
        assert settings.environment("production").cleanup_schedule == schedule


def test_unknown_operation_in_require_approval_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL + 'require_approval = ["up", "drop"]\n'))
    assert "drop" in message


def test_non_postgres_database_url_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("postgresql://u@db/app", "mysql://u@db/app"))
    assert "environments.production.database_url" in config_error(path)


@pytest.mark.parametrize("key", ["database_url", "migrations_dir"])
def test_missing_required_key_is_an_error_naming_it(tmp_path: Path, key: str) -> None:
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(key)) + "\n"
    path = write(tmp_path, text)
    message = config_error(path)
    assert f"environments.production.{key}" in message and "required" in message and str(path) in message


def test_no_environments_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[slack]\nalerts_channel = "C1"\n')
    message = config_error(path)
    assert "no environments" in message and str(path) in message


def test_environment_name_with_upper_case_is_refused(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL.replace("production", "Production")))
    assert "'Production'" in message


def test_environment_name_with_trailing_newline_is_refused(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL.replace("[environments.production]", '[environments."prod\\n"]')))
    assert "prod" in message


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path: Path, monkeypatch) -> None:
    conf_dir = tmp_path / "etc" / "dbops"
    conf_dir.mkdir(parents=True)
    path = write(conf_dir, MINIMAL.replace('"migrations"', '"../db/migrations"').replace('"snapshots"', '"snaps"')
                 + 'lock_dirs = ["locks/a.lock"]\n')
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    prod = load_settings(path.relative_to(tmp_path), environ={}).environment("production")
    assert prod.migrations_dir == (tmp_path / "etc" / "db" / "migrations").resolve()
    assert prod.snapshot_dir == (conf_dir / "snaps").resolve()
    assert prod.lock_dirs == ((conf_dir / "locks" / "a.lock").resolve(),)


@pytest.mark.parametrize("control", [
    "postgresql://u@db/app",
    "postgres://other:pw@DB:5432/app/",
])
def test_control_database_equal_to_a_managed_database_is_refused(tmp_path: Path, control: str) -> None:
    path = write(tmp_path, f'[control]\ndatabase_url = "{control}"\n' + MINIMAL)
    message = config_error(path)
    assert "control.database_url" in message and "'production'" in message and str(path) in message


def test_control_database_on_same_server_but_other_database_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '[control]\ndatabase_url = "postgresql://u@db/dbops"\n' + MINIMAL)
    assert load_settings(path, environ={}).control_database_url == "postgresql://u@db/dbops"


def test_unparseable_port_in_database_url_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[control]\ndatabase_url = "postgresql://u@ctl/dbops"\n'
                 + MINIMAL.replace("@db/app", "@db:54x2/app"))
    message = config_error(path)
    assert "database_url" in message and str(path) in message


def test_invalid_toml_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "retention_days = \n")
    message = config_error(path)
    assert "not valid TOML" in message and str(path) in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "dbops.toml"
    path.write_bytes(MINIMAL.encode() + b'# caf\xe9\n')
    assert str(path) in config_error(path)


def test_missing_file_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = config_error(path)
    assert "does not exist" in message and str(path) in message


def test_directory_given_as_config_file_is_a_config_error(tmp_path: Path) -> None:
    assert str(tmp_path) in config_error(tmp_path)


def test_passwords_in_urls_are_registered_for_redaction(tmp_path: Path) -> None:
    env_pw, control_pw = f"envpw-{uuid.uuid4().hex}", f"ctlpw-{uuid.uuid4().hex}"
    assert redact(f"error near {env_pw} and {control_pw}") == f"error near {env_pw} and {control_pw}"
    path = write(tmp_path, '[control]\ndatabase_url = "${CONTROL}"\n'
                 + MINIMAL.replace('"postgresql://u@db/app"', '"${PROD}"'))
    load_settings(path, environ={"CONTROL": f"postgresql://u:{control_pw}@ctl/dbops",
                                 "PROD": f"postgresql://u:{env_pw}@db/app"})
    masked = redact(f"error near {env_pw} and {control_pw}")
    assert env_pw not in masked and control_pw not in masked and "****" in masked


def test_example_password_is_masked_after_loading(tmp_path: Path) -> None:
    path = tmp_path / "dbops.toml"
    shutil.copy(EXAMPLE, path)
    load_settings(path, environ=ENVIRON)
    assert redact("authentication failed: secret rejected") == "authentication failed: **** rejected"


def test_percent_encoded_password_is_masked_in_its_decoded_form(tmp_path: Path) -> None:
    raw = f"p@ss-{uuid.uuid4().hex[:8]}"
    path = write(tmp_path, MINIMAL.replace('"postgresql://u@db/app"', '"${PROD}"'))
    load_settings(path, environ={"PROD": f"postgresql://u:{raw.replace('@', '%40')}@db/app"})
    assert raw not in redact(f"the password is {raw}")


def test_unknown_environment_error_lists_known_environments(tmp_path: Path) -> None:
    text = MINIMAL + MINIMAL.replace("production", "staging").replace("/app", "/app_staging")
    settings = load_settings(write(tmp_path, text), environ={})
    with pytest.raises(ConfigError) as info:
        settings.environment("nope")
    assert "'nope'" in str(info.value) and "production, staging" in str(info.value)


# --- approval that someone can give ---

NO_APPROVERS = MINIMAL.replace('approvers = ["S0DBAS"]\n', "")


def test_required_approval_with_no_approvers_is_an_error_at_start_naming_environment_and_key(tmp_path, capsys):
    from bot.cli.main import main

    path = write(tmp_path, NO_APPROVERS + 'require_approval = ["down", "restore"]\n')
    message = config_error(path)
    assert "environments.production.approvers is empty" in message and "require_approval lists down, restore" in message
    assert main(["migrate", "status", "--config", str(path)]) == 2
    assert "environments.production.approvers is empty" in capsys.readouterr().err


def test_the_default_require_approval_with_no_approvers_is_an_error_too(tmp_path: Path) -> None:
    assert "environments.production.approvers is empty" in config_error(write(tmp_path, NO_APPROVERS))


def test_a_single_approver_who_is_the_only_operator_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, NO_APPROVERS + 'approvers = ["U0ALICE"]\noperators = ["U0ALICE"]\n')
    message = config_error(path)
    assert "environments.production.approvers lists only U0ALICE, who is also the only operator" in message
    assert "nobody approves their own" in message


def test_approvals_someone_can_give_are_accepted(tmp_path: Path) -> None:
    for extra in ('approvers = ["S0DBAS"]\noperators = ["S0DBAS"]\n',      # a group: another member approves
                  'approvers = ["U0ALICE"]\noperators = ["U0ALICE", "U0BOB"]\n',
                  'approvers = ["U0ALICE"]\n',                                # anyone in the channel asks, alice answers
                  'require_approval = []\n'):                                  # nothing asks
        env = load_settings(write(tmp_path, NO_APPROVERS + extra), environ={}).environment("production")
        assert env.approvers or not env.require_approval, extra


def test_restore_from_with_no_approvers_is_an_error_because_such_a_restore_always_asks(tmp_path: Path) -> None:
    text = (NO_APPROVERS + "require_approval = []\n" + NO_APPROVERS.replace("production", "staging")
            .replace("/app", "/app_staging") + 'require_approval = []\nrestore_from = ["production"]\n')
    message = config_error(write(tmp_path, text))
    assert "environments.staging.approvers is empty" in message and "restore (restore_from)" in message
