"""Keeping what a restore would lose: measure it for the card, export it before a restore
(``--preserve``), re-import it after; list the bundles; re-import one later by name.

A bundle lives beside the snapshots (``commands.snapshot.store.bundle_store_for``) and is
kept and cleaned up by the snapshots' rules. Rows that could not be put back (their key is
there already, or their table no longer fits them) stay in it: the report names it.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import CommandError, SnapshotFailed, UsageError
from commands.kinds import Result
from commands.lock.migration_lock import migration_lock
from commands.preserve.bundles import FORMAT, NAME, BundleWriter, bundle_name, check_bundle_name, checksum, read_tables
from commands.preserve.results import BundleInfo, LossEstimate, PreservedListResult, PreserveReport, ReimportResult
from commands.results import Outcome, Reason, Refusal
from commands.snapshot import snapshot_ops
from commands.snapshot.bundle_leftovers import export_directory, remove_bundle_leftovers
from commands.snapshot.snapshots import Snapshot, manifest_if_readable
from commands.snapshot.store import BundleStore, bundle_store_for

log = structlog.get_logger("dbops.preserve")


def _columns(env: EnvironmentSettings) -> dict[str, tuple[str, ...]]:
    return dict(env.preserve)


def _since(snapshot: Snapshot, manifest: dict) -> datetime:
    """When the snapshot was taken: its manifest's time (to the microsecond), else its name's."""
    try:
        return datetime.fromisoformat(manifest["created_at"])
    except (KeyError, TypeError, ValueError):
        return snapshot.created_at


def _recorded(manifest: dict) -> dict | None:
    estimates = manifest.get("row_estimates")
    return estimates if isinstance(estimates, dict) else None


def measure(ctx: Context, env: EnvironmentSettings, snapshot: Snapshot) -> LossEstimate | None:
    """What restoring ``snapshot`` would lose now; None when it could not be measured (the card
    says so rather than fail)."""
    manifest = manifest_if_readable(snapshot)
    try:
        return ctx.databases.changed_rows(env).measure(_since(snapshot, manifest), _columns(env),
                                                       (env.migrations_table,), _recorded(manifest))
    except CommandError as err:
        log.warning("preserve.unmeasured", snapshot=snapshot.name, error=err.message)
        return None


class Keeper:
    """The ``snapshot_ops.Keep`` of a restore with ``--preserve``."""

    def __init__(self, ctx: Context, env: EnvironmentSettings, store: BundleStore) -> None:
        self.ctx, self.env, self.store = ctx, env, store
        self.bundle: str | None = None

    def export(self, snapshot: Snapshot) -> None:
        ctx, env = self.ctx, self.env
        manifest = manifest_if_readable(snapshot)
        since = _since(snapshot, manifest)
        changed = ctx.databases.changed_rows(env)
        loss = changed.measure(since, _columns(env), (env.migrations_table,), _recorded(manifest))
        remove_bundle_leftovers(export_directory(env.snapshot_dir), env.name)  # under the lock: no export runs
        writer = BundleWriter(env.snapshot_dir, env.name, level=env.snapshot_compression_level)
        try:
            changed.export(since, _columns(env), (env.migrations_table,), writer)
            sha256, size = writer.finish()
            now = ctx.clock()
            self.bundle = self.store.publish(bundle_name(env.name, now), writer.path, {
                "format": FORMAT, "environment": env.name, "snapshot": snapshot.name, "since": since.isoformat(),
                "created_at": now.isoformat(), "actor": ctx.actor.user, "tables": writer.tables,
                "rows": sum(t["rows"] for t in writer.tables), "untracked": list(loss.untracked),
                "size": size, "sha256": sha256})
        except OSError as err:
            raise SnapshotFailed(f"The rows written since {snapshot.name} could not be saved: "
                                 f"{err.strerror or err}. Nothing was restored.") from None
        finally:
            writer.discard()
        log.info("preserve.exported", bundle=self.bundle, rows=sum(t["rows"] for t in writer.tables))

    def reimport(self) -> PreserveReport:
        try:
            return _reimport(self.ctx, self.env, self.store, self.bundle)
        except CommandError as err:  # the restore is done: say where the rows are
            raise SnapshotFailed(f"The restore is done, but the rows written since the snapshot could not be put "
                                 f"back: {err.message} They are kept in bundle {self.bundle}: "
                                 f"`/snapshot reimport {self.bundle} {self.env.name}` tries again.") from None


def _reimport(ctx: Context, env: EnvironmentSettings, store: BundleStore, name: str) -> PreserveReport:
    """Put bundle ``name``'s rows back, table by table, after checking every byte against its
    manifest's sha256 (a damaged bundle is refused before anything is written)."""
    manifest = store.manifest(name)
    if checksum(store.open(name)) != manifest.get("sha256"):
        raise SnapshotFailed(f"Bundle {name} does not match its manifest's sha256: it is damaged, and nothing was "
                             "re-imported from it.")
    rows = {t["table"]: t["rows"] for t in manifest.get("tables", ())}
    done = ctx.databases.changed_rows(env).reimport(read_tables(store.open(name), rows))
    log.info("preserve.reimported", bundle=name, rows=sum(t.imported for t in done))
    return PreserveReport(bundle=name, tables=tuple(t for t in done if t.exported),
                          untracked=tuple(manifest.get("untracked", ())))


def _store(env: EnvironmentSettings, operation: str) -> BundleStore | Refusal:
    store = bundle_store_for(env)
    if store is None:
        return Refusal(env=env.name, operation=operation, reason=Reason.NO_SNAPSHOT_DIR)
    return store


def restore(ctx: Context, command: g.SnapshotRestore, env: EnvironmentSettings) -> Result:
    """``/snapshot restore``; with ``--preserve``, keeping the rows written since the snapshot."""
    if not command.preserve:
        return snapshot_ops.restore(ctx, command, env)
    store = _store(env, "snapshot restore")
    if isinstance(store, Refusal):
        return store
    return snapshot_ops.restore(ctx, command, env, keep=Keeper(ctx, env, store))


def preserved(ctx: Context, command: g.SnapshotPreserved, env: EnvironmentSettings) -> Result:
    store = _store(env, "snapshot preserved")
    if isinstance(store, Refusal):
        return store
    found = []
    for bundle in sorted((b for b in store.bundles() if b.environment == env.name), key=lambda b: b.name,
                         reverse=True):
        manifest = store.manifest(bundle.name)
        found.append(BundleInfo(name=bundle.name, created_at=bundle.created_at, snapshot=str(manifest.get("snapshot")),
                                rows=int(manifest.get("rows", 0)), tables=len(manifest.get("tables", ())),
                                size=bundle.size, pinned=bundle.pinned))
    return PreservedListResult(env=env.name, bundles=tuple(found), where=store.where)


def reimport(ctx: Context, command: g.SnapshotReimport, env: EnvironmentSettings) -> Result:
    name = check_bundle_name(command.name)
    if NAME.fullmatch(name)["env"] != env.name:
        raise UsageError(f"Bundle {name} holds {NAME.fullmatch(name)['env']}'s rows, not {env.name}'s.")
    store = _store(env, "snapshot reimport")
    if isinstance(store, Refusal):
        return store
    if name not in {b.name for b in store.bundles()}:
        raise UsageError(f"No bundle named {name!r}. `/snapshot preserved` lists them.")
    with migration_lock(ctx, env, "snapshot reimport") as db:
        if isinstance(db, Refusal):
            return db
        ctx.step("reimport", name)
        report = _reimport(ctx, env, store, name)
    imported = any(t.imported for t in report.tables)
    return ReimportResult(env=env.name, report=report, outcome=Outcome.DONE if imported else Outcome.NO_CHANGE)
