"""The snapshot operations: list, create, verify, restore, pin/unpin and cleanup.

Each sees and acts on its environment's own snapshots only (``commands.snapshot.snapshot_scope``),
whoever else shares the directory.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import datetime
from typing import Any, Protocol

import structlog

from commands import grammar as g, privileges
from commands.app.hooks import coordinated
from commands.config import EnvironmentSettings, Settings
from commands.context import Context
from commands.errors import CommandError, SnapshotFailed, UsageError
from commands.lock.migration_lock import migration_lock
from commands.snapshot.paging import Page, newest_page
from commands.snapshot.safety import safety_snapshot
from commands.migrations import Databases
from commands.results import Check, Outcome, Reason, Refusal
from commands.snapshot.results import (CleanupResult, DiskUsage, PinResult, RestoreResult, SnapshotCreated,
                                       SnapshotListResult, SnapshotVerifyResult)
from commands.kinds import Result
from commands.snapshot.snapshot_scope import Scope, confirmed, resolve, scope_of
from commands.snapshot.snapshots import (
    CleanupPlan, Listing, Snapshot, Verified, delete_files, diagnose_os, find, newest_first_key, plan_cleanup,
    set_pinned,
)
from commands.snapshot.bundle_leftovers import export_directory, remove_bundle_leftovers
from commands.snapshot.store import (BUNDLE_NAME, LocalStore, SnapshotStore, bundle_store_for, expired_bundles,
                                     object_store_for, store_for)

log = structlog.get_logger("dbops.snapshots")
LARGEST_TABLES = 5


def _checks(verified: Verified) -> tuple[Check, ...]:
    return tuple(Check(name=name, passed=passed, detail=detail) for name, passed, detail in verified.checks)


def _store(env: EnvironmentSettings, operation: str) -> SnapshotStore | Refusal:
    """The environment's snapshot store, or the Refusal for one that has none."""
    store = store_for(env)
    if store is None:
        return Refusal(env=env.name, operation=operation, reason=Reason.NO_SNAPSHOT_DIR)
    return store


def _named(ctx: Context, env: EnvironmentSettings, name: str, operation: str) -> Snapshot | Refusal:
    """The snapshot the user named, if ``env`` may act on it for ``operation`` (UsageError if
    there is none by that name; a Refusal if it is another environment's)."""
    store = _store(env, operation)
    return store if isinstance(store, Refusal) else resolve(ctx.settings, env, name, operation)


def disk_usage(store: SnapshotStore, snapshots: tuple[Snapshot, ...]) -> DiskUsage:
    """The file system's figures for a directory; for object storage (no disk to fill) its
    snapshots' total only."""
    if not isinstance(store, LocalStore):
        return DiskUsage(total=0, used=0, free=0, snapshots_bytes=sum(s.size for s in snapshots), store=store.where)
    directory = store.directory
    probe = directory if directory.exists() else directory.parent
    usage = shutil.disk_usage(probe)
    return DiskUsage(total=usage.total, used=usage.used, free=usage.free,
                     snapshots_bytes=sum(s.size for s in snapshots))


def list_(ctx: Context, command: g.SnapshotList, env: EnvironmentSettings) -> Result:
    store = _store(env, "snapshot list")
    if isinstance(store, Refusal):
        return store
    scope = scope_of(ctx.settings, env)
    if command.all:
        listing = scope.list()
        page = Page(listing=listing, counted=len(listing.snapshots), complete=True, whole=listing, more=None)
    else:
        page = newest_page(scope, before=command.before)
    listing = page.listing
    return SnapshotListResult(env=env.name, snapshots=tuple(s.info() for s in listing.snapshots),
                              orphans=listing.orphans, incomplete=listing.incomplete,
                              disk=disk_usage(store, (page.whole or listing).snapshots), drills=_drills(ctx, env),
                              before=command.before, counted=page.counted, complete=page.complete, more=page.more)


def _drills(ctx: Context, env: EnvironmentSettings) -> dict:
    """Each drilled snapshot's last drill; none when there is no control database or it cannot
    be read (the list is what matters in an incident: it never fails for want of them)."""
    if ctx.settings.control_database_url is None:
        return {}
    try:
        return ctx.databases.drills(ctx.settings.control_database_url).latest(env.name)
    except CommandError as err:
        log.warning("snapshot.drills_unread", env=env.name, error=err.message)
        return {}


def create(ctx: Context, command: g.SnapshotCreate, env: EnvironmentSettings) -> Result:
    store = _store(env, "snapshot create")
    if isinstance(store, Refusal):
        return store
    missing = privileges.refusal(ctx, env, privileges.SNAPSHOT_CREATE)
    if missing is not None:
        return missing
    with ctx.databases.open(env) as db:
        state = db.store.read()
    created = ctx.snapshots.create(env, reason=command.reason, actor=ctx.actor.user, state=state,
                                   progress=ctx.snapshot_progress)
    snapshot = find(store.list(), created.name)
    log.info("snapshot.created", snapshot=created.name, size=snapshot.size)
    return SnapshotCreated(env=env.name, snapshot=snapshot.info(), sha256=created.manifest["sha256"],
                           database_size=created.manifest["database_size"],
                           duration_ms=created.manifest["duration_ms"])


def verify(ctx: Context, command: g.SnapshotVerify, env: EnvironmentSettings) -> Result:
    snapshot = _named(ctx, env, command.name, "snapshot verify")
    if isinstance(snapshot, Refusal):
        return snapshot
    verified = ctx.snapshots.verify(env, snapshot)
    return SnapshotVerifyResult(env=env.name, name=snapshot.name,
                                checks=_checks(verified),
                                outcome=Outcome.DONE if verified.ok else Outcome.FAILED)


class Keep(Protocol):
    """What keeps the rows a restore loses (``commands.preserve``): ``export`` runs under the
    lock after the safety snapshot (so after the application's pause hook) and before the
    restore (a failure stops it there); ``reimport`` after the restore, its report going on the
    result, before the application resumes."""

    def export(self, snapshot: Snapshot) -> None: ...
    def reimport(self) -> Any: ...


def restore(ctx: Context, command: g.SnapshotRestore, env: EnvironmentSettings, keep: Keep | None = None) -> Result:
    """The restore, with the application's hooks around it when it has them (``commands.app.hooks``)."""
    result, hooks = coordinated(ctx, env, "snapshot restore", lambda inner: _restore(inner, command, env, keep))
    return dataclasses.replace(result, app_hooks=hooks) if hooks and isinstance(result, RestoreResult) else result


def _restore(ctx: Context, command: g.SnapshotRestore, env: EnvironmentSettings, keep: Keep | None) -> Result:
    snapshot = _named(ctx, env, command.name, "snapshot restore")
    if isinstance(snapshot, Refusal):
        return snapshot
    ctx.step("verify", snapshot.name)
    verified = ctx.snapshots.verify(env, snapshot)
    if not verified.ok:
        return Refusal(env=env.name, operation="snapshot restore", reason=Reason.SNAPSHOT_DAMAGED,
                       snapshot=snapshot.name,
                       checks=_checks(verified))
    started = time.perf_counter()
    with migration_lock(ctx, env, "snapshot restore") as db:
        if isinstance(db, Refusal):
            return db
        missing = privileges.refusal(ctx, env, privileges.RESTORE)
        if missing is not None:
            return missing
        before = db.store.read()
        safety = safety_snapshot(ctx, env, before, f"pre-restore of {snapshot.name}", "restore")
        if keep is not None:
            ctx.step("preserve", snapshot.name)
            keep.export(snapshot)
        ctx.step("restore", snapshot.name)
        restored = ctx.snapshots.restore(env, snapshot, progress=ctx.statement_progress(snapshot.name, "restore"))
    preserved = keep.reimport() if keep is not None else None
    ctx.step("read-back")
    with ctx.databases.open(env) as db:  # a new session: new-database mode replaced the old one
        after = db.store.read()
        largest = tuple(db.inspector.largest_tables(LARGEST_TABLES))
    log.info("snapshot.restored", snapshot=snapshot.name, mode=restored.mode, jobs=restored.jobs,
             version=after.version)
    return RestoreResult(env=env.name, name=snapshot.name, mode=restored.mode, safety_snapshot=safety,
                         before=before, after=after, largest_tables=largest, kept_database=restored.kept_database,
                         jobs=restored.jobs, duration_ms=(time.perf_counter() - started) * 1000, preserved=preserved,
                         database=restored.database, kept_size=restored.kept_size,
                         abandoned_dropped=restored.abandoned_dropped)


def pin(ctx: Context, command: g.SnapshotPin, env: EnvironmentSettings) -> Result:
    operation = "snapshot pin" if command.pinned else "snapshot unpin"
    bundles = bundle_store_for(env) if BUNDLE_NAME.fullmatch(command.name) else None
    if bundles is not None and BUNDLE_NAME.fullmatch(command.name)["env"] == env.name:  # rows a restore kept
        if command.name not in {b.name for b in bundles.bundles()}:
            raise UsageError(f"No bundle named {command.name!r}. `/snapshot preserved` lists them.")
        changed = bundles.set_pinned(command.name, command.pinned)
        return PinResult(env=env.name, name=command.name, pinned=command.pinned,
                         outcome=Outcome.DONE if changed else Outcome.NO_CHANGE, operation=operation)
    snapshot = _named(ctx, env, command.name, operation)
    if isinstance(snapshot, Refusal):
        return snapshot
    try:
        changed = set_pinned(snapshot, command.pinned)
    except OSError as err:
        raise SnapshotFailed(f"Could not {operation.split()[-1]} {snapshot.name}: "
                             + diagnose_os(err, snapshot.directory)) from None
    return PinResult(env=env.name, name=snapshot.name, pinned=command.pinned,
                     outcome=Outcome.DONE if changed else Outcome.NO_CHANGE, operation=operation)


def cleanup_plan(databases: Databases, settings: Settings, env: EnvironmentSettings, *, now: datetime,
                 retention_days: int) -> tuple[Listing, CleanupPlan]:
    """What a cleanup at ``now`` deletes and keeps: the one plan both ``/snapshot cleanup`` and
    the scheduled cleanup's notice use, so the notice lists what the run deletes."""
    with databases.open(env) as db:
        current = db.store.read()
    return own_cleanup_plan(scope_of(settings, env), env, now=now, retention_days=retention_days,
                            current_version=current.version)


def own_cleanup_plan(scope: Scope, env: EnvironmentSettings, *, now: datetime, retention_days: int,
                     current_version: int | None) -> tuple[Listing, CleanupPlan]:
    """``plan_cleanup`` over ``env``'s own snapshots, deleting only those whose manifest agrees
    they are ``env``'s (the rest are kept, saying why)."""
    listing = scope.list()
    plan = plan_cleanup(listing.snapshots, now=now, retention_days=retention_days, keep_last=env.keep_last,
                        current_version=current_version)
    disowned = tuple(s for s in plan.delete if not confirmed(s, env.name))
    if not disowned:
        return listing, plan
    keep = plan.keep + tuple((s, f"its manifest does not say it is {env.name}'s") for s in disowned)
    return listing, CleanupPlan(delete=tuple(s for s in plan.delete if s not in disowned),
                                keep=tuple(sorted(keep, key=lambda kept: newest_first_key(kept[0]), reverse=True)))


def cleanup(ctx: Context, command: g.SnapshotCleanup, env: EnvironmentSettings) -> Result:
    store = _store(env, "snapshot cleanup")
    if isinstance(store, Refusal):
        return store
    retention = env.retention_days if command.retention_days is None else command.retention_days
    listing, plan = cleanup_plan(ctx.databases, ctx.settings, env, now=ctx.clock(), retention_days=retention)
    before = disk_usage(store, listing.snapshots)
    freed = 0
    if not command.dry_run:
        for done, snapshot in enumerate(plan.delete):
            try:
                freed += delete_files(snapshot)
            except OSError as err:
                raise SnapshotFailed(f"Could not delete snapshot {snapshot.name}: {err.strerror or err} "
                                     f"({store.where}). {done} of {len(plan.delete)} were deleted before it; "
                                     "the others are still there.") from None
            log.info("snapshot.deleted", snapshot=snapshot.name, size=snapshot.size)
    else:
        freed = sum(s.size for s in plan.delete)
    expired = expired_bundles(env, now=ctx.clock(), retention_days=retention)
    if not command.dry_run:
        for bundle in expired:
            freed += bundle_store_for(env).delete(bundle.name)
            log.info("snapshot.bundle_deleted", bundle=bundle.name, size=bundle.size)
    else:
        freed += sum(b.size for b in expired)
    leftovers = remove_bundle_leftovers(export_directory(env.snapshot_dir), env.name, dry_run=command.dry_run)
    if (bucket := object_store_for(env)) is not None:  # a killed publish's unfinished upload
        leftovers += bucket.tidy_bundles(env.name, dry_run=command.dry_run)
    after = before if command.dry_run else disk_usage(store, scope_of(ctx.settings, env).list().snapshots)
    outcome = Outcome.DONE if plan.delete or expired or leftovers else Outcome.NO_CHANGE
    return CleanupResult(env=env.name, dry_run=command.dry_run, retention_days=retention, keep_last=env.keep_last,
                         deleted=tuple(s.info() for s in plan.delete), kept=tuple((s.info(), why) for s, why in plan.keep),
                         freed_bytes=freed, disk_before=before, disk_after=after, outcome=outcome,
                         bundles_deleted=tuple(b.name for b in expired), export_leftovers=tuple(leftovers))
