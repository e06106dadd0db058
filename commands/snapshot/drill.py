"""``/snapshot drill``: prove a snapshot restores before anyone needs it to.

The snapshot (the environment's newest by default) is checked against its checksum, restored
through the environment's ``Snapshotter`` (so from whichever store holds it) into an empty
scratch database (``Scratch.database``: ``scratch_database_url``, else the managed server with
CREATEDB, else embedded PostgreSQL), and the copy is checked: the version ``schema_migrations``
holds is the manifest's, the largest tables have rows as the manifest recorded (where it did),
and no foreign key has orphaned rows. The scratch database is dropped whatever happened. The
managed database is never written: no lock, no approval. The outcome is kept in the control
database, where ``/snapshot list`` and a restore's time estimate read it.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import CommandError
from commands.kinds import Result
from commands.results import Check, Outcome, Reason, Refusal
from commands.snapshot.results import DrillRecord, DrillResult, RestoreEstimate, TableRows
from commands.snapshot.snapshot_scope import resolve, scope_of
from commands.snapshot.store import store_for
from commands.snapshot.snapshots import Snapshot, manifest_if_readable

log = structlog.get_logger("dbops.drills")
LARGEST_TABLES = 5
# Snapshot bytes (zstd-compressed custom-format dump) restored per second when no drill has
# been timed: a cautious figure for a small server, so an estimate errs long, never short.
ASSUMED_BYTES_PER_SECOND = 2 * 1024 * 1024
# A restored table may differ this much from the count the manifest recorded (the count is
# read beside the dump, not inside its snapshot, so writes during the dump move it).
ROW_TOLERANCE = 0.10


def drill(ctx: Context, command: g.SnapshotDrill, env: EnvironmentSettings) -> Result:
    if store_for(env) is None:  # neither snapshot_dir nor snapshot_url
        return Refusal(env=env.name, operation="snapshot drill", reason=Reason.NO_SNAPSHOT_DIR)
    if command.name is not None:
        snapshot = resolve(ctx.settings, env, command.name, "snapshot drill")
        if isinstance(snapshot, Refusal):
            return snapshot
    else:
        snapshots = scope_of(ctx.settings, env).list().snapshots
        if not snapshots:
            return DrillResult(env=env.name, name=None, outcome=Outcome.NO_CHANGE)
        snapshot = snapshots[0]
    result = _drill(ctx, env, snapshot)
    return _record(ctx, result)


def _drill(ctx: Context, env: EnvironmentSettings, snapshot: Snapshot) -> DrillResult:
    ctx.step("verify", snapshot.name)
    verified = ctx.snapshots.verify(env, snapshot)
    checks = [Check(name=name, passed=passed, detail=detail) for name, passed, detail in verified.checks]
    base = DrillResult(env=env.name, name=snapshot.name, size=snapshot.size)
    if not verified.ok:
        return replace(base, checks=tuple(checks), outcome=Outcome.FAILED)
    scratch = ctx.databases.scratch(env)
    with scratch.database() as place:
        base = replace(base, scratch=place.where)
        ctx.step("restore", snapshot.name)
        # The same restore a /snapshot restore runs, aimed at the empty scratch database.
        target = replace(env, database_url=place.url, restore_mode="in-place")
        try:
            restored = ctx.snapshots.restore(target, snapshot)
        except CommandError as err:
            checks.append(Check(name="restore", passed=False, detail=err.message))
            return replace(base, checks=tuple(checks), outcome=Outcome.FAILED)
        checks.append(Check(name="restore", passed=True, detail=f"{restored.duration_ms / 1000:.1f} s"))
        ctx.step("check", snapshot.name)
        with ctx.databases.open(target) as db:
            state = db.store.read()
            largest = tuple(db.inspector.largest_tables(LARGEST_TABLES))
            orphans = [o for o in db.inspector.foreign_key_orphans() if o.rows]
    manifest = manifest_if_readable(snapshot)
    checks.append(_version_check(manifest.get("version", snapshot.version), state.version, state.dirty))
    checks.append(_rows_check(_recorded_rows(manifest), largest))
    checks.append(Check(name="foreign keys", passed=not orphans,
                        detail="no orphaned rows" if not orphans else
                        "; ".join(f"{o.constraint} on {o.table}: {o.rows} orphaned" for o in orphans[:3])))
    passed = all(c.passed for c in checks)
    return replace(base, restore_ms=restored.duration_ms, checks=tuple(checks), largest_tables=largest,
                   outcome=Outcome.DONE if passed else Outcome.FAILED)


def _version_check(expected: int | None, version: int, dirty: bool) -> Check:
    if expected is None:
        return Check(name="version", passed=not dirty, detail=f"restored {version}; the snapshot records none")
    if expected == version and not dirty:
        return Check(name="version", passed=True, detail=f"{version}, as the manifest says")
    said = f"{version}{' (dirty)' if dirty else ''}"
    return Check(name="version", passed=False,
                 detail=f"schema_migrations holds {said}, the manifest says {expected}")


def _recorded_rows(manifest: dict) -> dict | None:
    """What the manifest says each table held: its counts (``table_rows``), else the row
    estimates every snapshot records (``row_estimates``; a table never analysed has none);
    None when it says neither (an older snapshot)."""
    if isinstance(manifest.get("table_rows"), dict):
        return manifest["table_rows"]
    estimates = manifest.get("row_estimates")
    known = {t: n for t, n in estimates.items() if isinstance(n, int)} if isinstance(estimates, dict) else {}
    return known or None


def _rows_check(recorded: object, largest: tuple[TableRows, ...]) -> Check:
    """The restored largest tables against the rows the manifest recorded (table -> rows),
    where it recorded them."""
    shown = ", ".join(f"{t.table} {t.rows}" for t in largest) or "no tables"
    if not isinstance(recorded, dict):
        return Check(name="row counts", passed=True, detail=f"{shown} (the manifest records none to compare)")
    restored = {t.table: t.rows for t in largest}
    off = [f"{table}: {restored.get(table, 'missing')} of {rows}" for table, rows in recorded.items()
           if table in restored and abs(restored[table] - rows) > ROW_TOLERANCE * max(rows, 10)]
    return Check(name="row counts", passed=not off, detail="; ".join(off) if off else f"{shown}, as recorded")


def _record(ctx: Context, result: DrillResult) -> DrillResult:
    failed = next((c for c in result.checks if not c.passed), None)
    log.info("snapshot.drilled", snapshot=result.name, passed=result.passed, restore_ms=result.restore_ms,
             failed=failed.name if failed else None)
    url = ctx.settings.control_database_url
    if url is None:
        return replace(result, recorded=False)
    ctx.databases.drills(url).record(DrillRecord(
        env=result.env, snapshot=result.name, drilled_at=ctx.clock(), passed=result.passed,
        restore_ms=result.restore_ms, size=result.size, actor=ctx.actor.user,
        detail=f"{failed.name}: {failed.detail}" if failed else ""))
    return result


def estimate(ctx: Context, env: EnvironmentSettings, size: int) -> RestoreEstimate | None:
    """How long restoring ``size`` bytes of snapshot into ``env`` should take: the last passed
    drill's rate, else the assumed one. None when the drills cannot be read (the card goes on
    without a figure rather than fail)."""
    url = ctx.settings.control_database_url
    last = None
    if url is not None:
        try:
            last = ctx.databases.drills(url).last(env.name, passed=True)
        except CommandError as err:
            log.warning("drill.estimate_unread", env=env.name, error=err.message)
            return None
    if last is None or not last.restore_ms or not last.size:
        return RestoreEstimate(seconds=size / ASSUMED_BYTES_PER_SECOND, size=size, rate=ASSUMED_BYTES_PER_SECOND)
    rate = last.size / (last.restore_ms / 1000)
    return RestoreEstimate(seconds=size / rate, size=size, drilled=last.snapshot, drilled_at=last.drilled_at,
                           rate=rate)
