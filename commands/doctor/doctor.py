"""``/dbops doctor [ENV]``: every precondition of the environment's operations, checked, each
with what to do about it.

One line per check, in a fixed order: the managed and the control database, the client
programs against the server, the role's privileges for each feature
(``commands.doctor.doctor_privileges``), the snapshot directory and its free space, the migration
files, the lock directories, the app's health check, its pause and resume hooks (never called:
``commands.doctor.doctor_hooks``) and the Slack token. A check that needs
what failed before it is skipped, not failed again. Nothing is changed: the snapshot
directory's write test uses an unnamed temporary file, and a missing directory is not made;
object storage's is a probe object deleted at once and a multipart upload aborted at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Callable

from commands import grammar as g
from commands.lock import lock_dirs
from commands.migrate import migrate_ops
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.doctor.doctor_hooks import hooks_check
from commands.doctor.doctor_privileges import ident, listed, privilege_checks
from commands.errors import CommandError, ConfigError, SnapshotFailed, SourceError
from commands.probes import DatabaseFacts
from commands.doctor.results import DoctorCheck, DoctorResult, Verdict
from commands.results import Outcome
from commands.snapshot.store import object_store_for
from commands.units import human_size, used_percent

OLDEST_SERVER = 13  # the oldest PostgreSQL dbops is tested with
SNAPSHOT_DIR, FREE_SPACE, LOCK_DIRS = "snapshot directory", "free space", "lock directories"
ABANDONED_RESTORES = "abandoned restores"


def run(ctx: Context, command: g.DbopsDoctor, env: EnvironmentSettings) -> DoctorResult:
    if ctx.probe is None:
        raise ConfigError("dbops doctor was started without a way to read PostgreSQL's catalogs (no Probe).")
    connection, facts = _connection(ctx, env)
    checks = [connection, _control(ctx, env), _client_tools(ctx, env, facts), *privilege_checks(env, facts),
              *_abandoned_restores(env, facts),
              _looking(SNAPSHOT_DIR, lambda: _snapshot_dir(env)), _looking(FREE_SPACE, lambda: _free_space(env, facts)),
              _migration_files(ctx, env), _looking(LOCK_DIRS, lambda: _lock_dirs(ctx, env)), _health(env),
              hooks_check(env), _slack(ctx)]
    failed = any(c.verdict is Verdict.FAIL for c in checks)
    return DoctorResult(env=env.name, checks=tuple(checks), outcome=Outcome.FAILED if failed else Outcome.DONE)


def _check(name: str, verdict: Verdict, detail: str, fix: str | None = None) -> DoctorCheck:
    return DoctorCheck(name=name, verdict=verdict, detail=detail, fix=fix)


def _connection(ctx: Context, env: EnvironmentSettings) -> tuple[DoctorCheck, DatabaseFacts | None]:
    name = "database connection"
    try:
        facts = ctx.probe.database(env)
    except CommandError as err:
        return _check(name, Verdict.FAIL, err.message,
                      f"Check database_url under [environments.{env.name}]: host, port, database, user and password, "
                      "and that the server accepts connections from this host."), None
    return _check(name, Verdict.PASS, f"connected as {facts.role.user} to {facts.database} "
                                      f"(PostgreSQL {facts.server_version})"), facts


def _control(ctx: Context, env: EnvironmentSettings) -> DoctorCheck:
    name, url = "control database", ctx.settings.control_database_url
    set_it = "Set [control] database_url to a database of dbops' own (never a managed one)."
    if not url:
        if env.require_approval:
            return _check(name, Verdict.FAIL, "not configured, and approvals live there: "
                          f"{', '.join(env.require_approval)} (require_approval) cannot run", set_it)
        return _check(name, Verdict.WARN, "not configured: no audit log, approvals, alerts or schedules", set_it)
    try:
        facts = ctx.probe.control(url)
    except CommandError as err:
        return _check(name, Verdict.FAIL, f"{err.message}: approvals, the audit log, alerts and schedules live there; "
                                          "until it is back, only read-only commands answer",
                      "Check [control] database_url: host, port, database, user and password, and that the server "
                      "accepts connections from this host.")
    if facts.dirty or facts.version < facts.latest:
        state = f"dirty at version {facts.version}" if facts.dirty else f"at version {facts.version} of {facts.latest}"
        return _check(name, Verdict.FAIL, f"reachable, but dbops' schema there is {state}: dbops could not bring it "
                                          "up to date",
                      "Give the control database's role CREATE on its schema, then start dbops again (it migrates "
                      "its schema at start-up).")
    return _check(name, Verdict.PASS, f"reachable; dbops' schema is at version {facts.version}")


def _client_tools(ctx: Context, env: EnvironmentSettings, facts: DatabaseFacts | None) -> DoctorCheck:
    name = "client tools"
    if facts is None:
        return _check(name, Verdict.SKIP, "not checked: the server's version is unknown (no connection)")
    fix = (f"Set pg_bin_dir under [environments.{env.name}] to the directory of PostgreSQL {facts.server_major}'s "
           "(or a newer) pg_dump, pg_restore and psql.")
    try:
        client = ctx.probe.client_major(env)
    except CommandError as err:
        return _check(name, Verdict.FAIL, err.message, fix)
    if client < facts.server_major:
        return _check(name, Verdict.FAIL, f"pg_dump {client} is older than the server (PostgreSQL "
                                          f"{facts.server_version}) and refuses to dump it: every snapshot fails, and "
                                          "with it every migration", fix)
    if facts.server_major < OLDEST_SERVER:
        return _check(name, Verdict.WARN, f"PostgreSQL {facts.server_version} is older than {OLDEST_SERVER}, the "
                                          "oldest dbops is tested with", "Upgrade the server.")
    return _check(name, Verdict.PASS, f"pg_dump {client} for PostgreSQL {facts.server_version}")


def _abandoned_restores(env: EnvironmentSettings, facts: DatabaseFacts | None) -> list[DoctorCheck]:
    """A line only when there is something to say: a killed new-database restore's fresh
    database, half-loaded and taking space (``commands.pg.restore_names``)."""
    if facts is None or not facts.abandoned_restores:
        return []
    names = facts.abandoned_restores
    which = f"database {names[0]} is" if len(names) == 1 else f"{len(names)} databases ({listed(names)}) are"
    drops = " ".join(f"DROP DATABASE {ident(name)} WITH (FORCE);" for name in names)
    return [_check(ABANDONED_RESTORES, Verdict.WARN,
                   f"{which} left from a restore of {facts.database} killed part-way: half-loaded, taking space, "
                   "and used by nothing",
                   f"The next /snapshot restore {env.name} drops {'it' if len(names) == 1 else 'them'} first. Or, "
                   f"unless a restore is running now (/dbops lock status {env.name}), by hand: {drops}")]


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _looking(name: str, check: Callable[[], DoctorCheck]) -> DoctorCheck:
    """``check()``, or its failing line when the file system does not let dbops look."""
    try:
        return check()
    except OSError as err:
        return _check(name, Verdict.FAIL, f"could not look: {err.strerror} ({err.filename})",
                      "Give the user dbops runs as access to the paths in the configuration.")


def _snapshot_dir(env: EnvironmentSettings) -> DoctorCheck:
    name, directory = SNAPSHOT_DIR, env.snapshot_dir
    if env.snapshot_url is not None and directory is None:
        return _object_store(env)
    if directory is None:
        return _check(name, Verdict.SKIP, "not configured (pre_migration_snapshot = false): migrations run without a "
                                          "snapshot first")
    key = f"snapshot_dir under [environments.{env.name}]"
    if not directory.exists():
        ancestor = _existing_ancestor(directory)
        if not ancestor.is_dir():
            return _check(name, Verdict.FAIL, f"{directory} does not exist and cannot be made: {ancestor} is not a "
                                              "directory", f"Point {key} at a directory.")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            why = "is on a read-only file system" if _read_only(ancestor) else "is not writable by dbops' user"
            return _check(name, Verdict.FAIL, f"{directory} does not exist and cannot be made: {ancestor} {why}",
                          f"mkdir -p {directory} and give the user dbops runs as write access to it, or change {key}.")
        return _check(name, Verdict.WARN, f"{directory} does not exist yet; the first snapshot makes it, on the file "
                                          f"system of {ancestor} (if it should be a mounted volume, it is not mounted)",
                      f"mkdir -p {directory}, or mount its volume.")
    if not directory.is_dir():
        return _check(name, Verdict.FAIL, f"{directory} is not a directory", f"Point {key} at a directory.")
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".dbops-doctor-"):
            pass
    except OSError as err:
        why = "is on a read-only file system" if _read_only(directory) else f"is not writable ({err.strerror})"
        return _check(name, Verdict.FAIL, f"{directory} {why}: every snapshot fails, and with it every migration",
                      f"Give the user dbops runs as write access to {directory} (on a read-write file system), or "
                      f"change {key}.")
    return _check(name, Verdict.PASS, f"{directory} is writable")


def _object_store(env: EnvironmentSettings) -> DoctorCheck:
    """Object storage: listing its prefix proves the endpoint, the credentials and the bucket;
    a probe object written and deleted, and a multipart upload started and aborted, prove
    what a create and a cleanup will ask (in place of a directory's write test and free space)."""
    fix = ("Check snapshot_url and s3_endpoint_url, the AWS credentials dbops runs with, and the bucket policy "
           "(docs/object-storage.md).")
    try:
        store = object_store_for(env)
        listing = store.list()
        refused = store.probe()
    except SnapshotFailed as err:
        return _check(SNAPSHOT_DIR, Verdict.FAIL, f"{err.message}: every snapshot fails, and with it every migration",
                      fix)
    listed = f"{env.snapshot_url} can be listed ({len(listing.snapshots)} snapshots)"
    said = "; ".join(f"{step}: {code}" for step, code in refused.items())
    if "write" in refused or "start an upload" in refused:
        return _check(SNAPSHOT_DIR, Verdict.FAIL, f"{listed}, but dbops may not write there ({said}): every snapshot "
                                                  "fails, and with it every migration", fix)
    if refused:
        return _check(SNAPSHOT_DIR, Verdict.WARN, f"{listed} and written to, but not everything was allowed ({said}): "
                      "cleanup cannot delete snapshots, or a killed create's upload cannot be aborted", fix)
    return _check(SNAPSHOT_DIR, Verdict.PASS, f"{listed}; a probe object was written and deleted, and a multipart upload "
                                              "started and aborted, under its prefix")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _free_space(env: EnvironmentSettings, facts: DatabaseFacts | None) -> DoctorCheck:
    name = FREE_SPACE
    if env.snapshot_dir is None:
        return _check(name, Verdict.SKIP, "object storage has no disk to fill (the check above writes there instead)"
                      if env.snapshot_url else "no snapshot directory")
    if facts is None:
        return _check(name, Verdict.SKIP, "not checked: the database's size is unknown (no connection)")
    where = _existing_ancestor(env.snapshot_dir)
    disk = shutil.disk_usage(where)
    said = (f"{human_size(disk.free)} free in {where}; the database is {human_size(facts.size)}, "
            f"{human_size(facts.data_size)} of it table data (what a snapshot holds, before zstd)")
    fix = f"Free space (/snapshot cleanup {env.name} deletes old snapshots) or give {env.snapshot_dir} more room."
    if disk.free < facts.data_size // 10:
        return _check(name, Verdict.FAIL, said + ": a snapshot will not fit, and every migration takes one first",
                      fix)
    if disk.free < facts.data_size:
        return _check(name, Verdict.WARN, said + ": a snapshot fits only if zstd shrinks it enough", fix)
    percent = used_percent(disk.used, disk.free)
    if percent >= env.disk_alert_percent:
        return _check(name, Verdict.WARN, said + f"; the disk is {percent}% full, over disk_alert_percent "
                                                 f"({env.disk_alert_percent}), so the disk watcher alerts", fix)
    return _check(name, Verdict.PASS, said)


def _migration_files(ctx: Context, env: EnvironmentSettings) -> DoctorCheck:
    name = "migration files"
    try:
        result = migrate_ops.validate(ctx, g.MigrateValidate(env=env.name), env)
    except SourceError as err:
        return _check(name, Verdict.FAIL, err.message,
                      f"Point migrations_dir under [environments.{env.name}] at the directory of the .up.sql and "
                      ".down.sql files, readable by the user dbops runs as; rename or remove a duplicate version.")
    directory = env.migrations_dir
    errors = [p for p in result.problems if p.severity == "error"]
    warnings = [p for p in result.problems if p.severity == "warning"]
    if errors:
        shown = [f"{p.filename}" + (f" line {p.line}" if p.line else "") + f": {p.message}" for p in errors]
        problems = "1 problem" if len(errors) == 1 else f"{len(errors)} problems"
        return _check(name, Verdict.FAIL, f"{problems} in {directory}: {listed(shown)}",
                      f"Fix the files (/migrate validate {env.name} lists every problem); nothing runs a file "
                      "that does not parse.")
    if warnings:
        shown = [f"{p.filename}: {p.message}" for p in warnings]
        return _check(name, Verdict.WARN, f"{result.files_checked} files parse; {listed(shown)}",
                      "Files that are not migrations are skipped, as golang-migrate skips them; a missing down file "
                      f"makes rolling back through its version a no-op (/migrate validate {env.name} lists them).")
    if result.files_checked == 0:
        return _check(name, Verdict.WARN, f"{directory} has no migration files",
                      f"Check migrations_dir under [environments.{env.name}].")
    return _check(name, Verdict.PASS, f"{result.files_checked} files in {directory} parse; none skipped")


def _lock_dirs(ctx: Context, env: EnvironmentSettings) -> DoctorCheck:
    name = LOCK_DIRS
    if not env.lock_dirs:
        return _check(name, Verdict.SKIP, "none configured (lock_dirs): deploy scripts share only the advisory lock")
    timeout = timedelta(minutes=env.lock_dir_timeout_minutes)
    for path in env.lock_dirs:
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            why = "does not exist" if not path.parent.is_dir() else "is not writable by dbops' user"
            return _check(name, Verdict.FAIL, f"{path} cannot be taken: {path.parent} {why}, so every migration fails",
                          f"Make {path.parent} a directory the user dbops runs as (and the deploy script) may write "
                          f"in, or fix lock_dirs under [environments.{env.name}].")
        info = lock_dirs.inspect(path, now=ctx.clock(), timeout=timeout)
        if info.exists:
            state = "stale (its owner is gone)" if info.stale else "held: a deploy may be running"
            return _check(name, Verdict.WARN, f"{path} exists, {state}; migrations wait for it",
                          f"/dbops lock status {env.name} says who holds it; /dbops lock release {env.name} removes "
                          "a stale one.")
    return _check(name, Verdict.PASS, f"{listed([str(p) for p in env.lock_dirs])}: free, and can be taken")


def _health(env: EnvironmentSettings) -> DoctorCheck:
    name = "app health check"
    if env.health_url is None:
        return _check(name, Verdict.SKIP, "not configured (health_url): a rollback cannot check the app afterwards")
    from commands.app.health import check_app_health  # its HTTP client only when a doctor runs
    health = check_app_health(env.health_url)
    fix = (f"Check health_url under [environments.{env.name}]: the app must answer GET with its health JSON "
           "(checks.migrations).")
    if not health.reachable or health.migrations_status is None:
        return _check(name, Verdict.FAIL, health.message, fix)
    if health.migrations_status != "pass":
        return _check(name, Verdict.WARN, f"{health.url}: {health.message}",
                      f"The app says its migrations check fails: /migrate status {env.name}.")
    return _check(name, Verdict.PASS, f"{health.url}: {health.message}")


def _slack(ctx: Context) -> DoctorCheck:
    name = "Slack token"
    if ctx.slack is None:
        return _check(name, Verdict.SKIP, "not configured (SLACK_BOT_TOKEN unset)",
                      "Set SLACK_BOT_TOKEN (and SLACK_API_URL, if not Slack's own) to check the bot's token.")
    ok, said = ctx.slack.auth_test()
    if ok:
        return _check(name, Verdict.PASS, f"auth.test: {said}")
    return _check(name, Verdict.FAIL, f"auth.test: {said}",
                  "Set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, under OAuth & Permissions); "
                  "reinstall the app if the token was revoked.")
