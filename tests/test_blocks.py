"""The Slack replies: golden files for every kind, Slack's limits and escaping whatever the input.

Results are built by hand (no database). ``DBOPS_UPDATE_GOLDEN=1`` rewrites the golden files;
read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.slack.blocks.render import (
    RENDERERS, Message, attributed, render, render_error, render_internal_error, render_interrupted, render_progress,
    with_refresh,
)
from bot.slack.blocks.approvals import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION, deny_modal_view, render_request_final
from bot.slack.blocks.rollback import CHOOSE_ACTION
from bot.slack.blocks import locks as blocks_locks
from bot.cli.shell import result_text
from commands import grammar
from commands.errors import SnapshotFailed, UsageError, privilege_error
from commands.approval.results import (ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalRequest,
                                       ApprovalsResult, Impact)
from commands.lint.results import LossyStatement
from commands.results import (AppliedFile, AuditEntry, Check, FileCheck, FileFlag, FileProblem, HelpResult, HistoryResult, LockHolder, Mismatch,
                              OperationRecord, Outcome, Progress, Reason, Refusal, SqlError, State)
from commands.snapshot.results import (CleanupResult, DiskUsage, DrillResult, RestoreEstimate, PinResult, RestoreResult, SnapshotCreated,
                                       SnapshotInfo, SnapshotListResult, SnapshotVerifyResult, TableRows)
from commands.migrate.results import (DryRunFile, DryRunResult, MigrateResult, MigrationInfo, StatusResult, UnblockResult,
                                      StepFailure, StepReport, ValidateResult)
from commands.preserve.results import (BundleInfo, LossEstimate, PreservedListResult, PreserveReport, ReimportResult,
                                       TableLoss, TableReimport)
from commands.rollback.results import AppHealthCheck, OrphanCount, RollbackOption, RollbackPlan, RollbackResult
from commands.app.results import AppHooks, HookCall, HookPlan
from commands.lint.results import Finding, LockEstimate, PlanFile, PlanResult
from commands.results import Missing, Shortfall
from commands.sessions import Blocker
from commands.watch.results import Alert, AlertEvent, DiskWatchInfo, DriftWatchInfo
from bot.slack.blocks import drift_alerts as blocks_drift
from bot.slack.blocks.schema_change import schema_thread
from commands.results import LockDirInfo
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.doctor.results import DoctorCheck, DoctorResult, Verdict
from commands.schema.compare import Change, Difference
from commands.schema.results import BaselineResult, DriftResult, Leftover, SchemaVersion

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 1, 28, 16, 30, tzinfo=UTC)
GB = 1024 ** 3
MB = 1024 ** 2
V1, V2, V3, V4, V5 = 20260128001, 20260128002, 20260128003, 20260128004, 20260128005
NAMES = {V1: "initial_schema", V2: "add_users", V3: "add_user_preferences", V4: "index_events_start_time",
         V5: "add_event_status"}
DISK = DiskUsage(total=100 * GB, used=61 * GB, free=39 * GB, snapshots_bytes=212 * MB)
HOLDER = LockHolder(pid=48213, application_name="migrate", client="10.0.4.17", user="togather",
                    since=NOW - timedelta(minutes=12), state="idle in transaction")
IDLE_BLOCKER = Blocker(pid=51007, session_start=NOW - timedelta(minutes=40), application_name="api", client="10.20.0.12",
                       user="app", state="idle in transaction", xact_seconds=1260.0, state_seconds=1190.0,
                       query="UPDATE users SET last_seen = now() WHERE id = 7", lock="RowExclusiveLock", relation="users")


def info(v: int, *, up: bool = True, down: bool = True) -> MigrationInfo:
    return MigrationInfo(version=v, name=NAMES[v], has_up=up, has_down=down)


def snap(minutes_ago: float, version: int | None, reason: str, *, pinned: bool = False, dirty: bool = False,
         kind: str = "dbops", size: int = 42 * MB, name: str | None = None) -> SnapshotInfo:
    at = NOW - timedelta(minutes=minutes_ago)
    slug = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")[:40] or "x"
    default = f"production_{at:%Y%m%d_%H%M%S}_v{'none' if version is None else version}{'-dirty' if dirty else ''}_{slug}"
    return SnapshotInfo(name=name or default, kind=kind, created_at=at, size=size, reason=reason, version=version,
                        dirty=dirty, pinned=pinned)


PRE_MIGRATION = snap(45, V3, f"pre-migration v{V3} to v{V5}")
STAGING_SNAPSHOT = f"staging_{NOW - timedelta(minutes=45):%Y%m%d_%H%M%S}_v{V3}_pre-migration-v{V3}-to-v{V5}"


# --- one sample per reply kind -------------------------------------------------------------------

def status_clean() -> StatusResult:
    return StatusResult(env="production", state=State(version=V3, dirty=False),
                        applied=(info(V1), info(V2), info(V3)), pending=(info(V4), info(V5)), mismatch=None,
                        missing_down=(), skipped_files=(), lock_holder=None, newest_snapshot=PRE_MIGRATION)


V6 = 20260129001  # applied by a newer checkout, which failed it and was rolled back


def status_dirty() -> StatusResult:
    return StatusResult(env="production", state=State(version=V6, dirty=True),
                        applied=(info(V1), info(V2), info(V3), info(V4, down=False), info(V5)), pending=(),
                        mismatch=Mismatch(database_version=V6, latest_file_version=V5, ahead=True),
                        missing_down=(V4,), skipped_files=("README.md", "seed_dev.sql"), lock_holder=HOLDER,
                        newest_snapshot=snap(20, V5, f"pre-migration v{V5} to v{V6}"))


def snapshot_list() -> SnapshotListResult:
    return SnapshotListResult(env="production", snapshots=(
        PRE_MIGRATION,
        snap(60 * 26, V3, "before_risky_change", pinned=True, size=41 * MB),
        snap(60 * 50, V2, "manual", dirty=True, size=40 * MB),
        snap(60 * 24 * 9, None, "", kind="legacy", size=39 * MB, name="togather_production_20260119_163000.sql.gz"),
    ), orphans=("production_20260101_120000_v3_manual.manifest.json",), incomplete=(".tmp-production_20260128_1620",),
        disk=DISK)


def snapshot_page(before: str | None = None) -> SnapshotListResult:
    """A page of a bucket's newest: counted from the newest only, so no total size."""
    shown = tuple(snap(60 * 6 * i + (0 if before is None else 60 * 24 * 30), V3, f"nightly {i}", pinned=i == 2)
                  for i in range(3))
    return SnapshotListResult(env="production", snapshots=shown, orphans=(), incomplete=(), before=before,
                              counted=212, complete=False, more=shown[-1].name,
                              disk=DiskUsage(total=0, used=0, free=0, snapshots_bytes=3 * 42 * MB,
                                             store="s3://dbops-snapshots/production"))


def snapshot_last_page() -> SnapshotListResult:
    older = snap(60 * 24 * 9, V2, "manual")
    return SnapshotListResult(env="production", snapshots=(older,), orphans=(), incomplete=(), disk=DISK,
                              before=PRE_MIGRATION.name, counted=1, complete=True)


def migrate_done() -> MigrateResult:
    return MigrateResult(env="production", operation="up", outcome=Outcome.DONE, before=State(version=V3, dirty=False),
                         after=State(version=V5, dirty=False), steps=(
                             StepReport(version=V4, name=NAMES[V4], direction="up", filename=f"{V4}_{NAMES[V4]}.up.sql",
                                        mode="no-transaction", duration_ms=8412.0),
                             StepReport(version=V5, name=NAMES[V5], direction="up", filename=f"{V5}_{NAMES[V5]}.up.sql",
                                        mode="transactional", duration_ms=37.4)),
                         snapshot=PRE_MIGRATION.name, duration_ms=14_230.0)


def migrate_failed(*, dirty: bool) -> MigrateResult:
    if dirty:
        error = SqlError(message='could not create unique index "users_email_key"', sqlstate="23505",
                         detail="Key (email)=(ana@example.com) is duplicated.", line=1, column=1)
        mode = "no-transaction"
        version = V4
    else:
        error = SqlError(message='column "status" of relation "events" already exists', sqlstate="42701",
                         hint="Use ADD COLUMN IF NOT EXISTS to make the migration idempotent.", line=3, column=27)
        mode = "transactional"
        version = V5
    done = () if dirty else (StepReport(version=V4, name=NAMES[V4], direction="up",
                                        filename=f"{V4}_{NAMES[V4]}.up.sql", mode="transactional", duration_ms=212.0),)
    return MigrateResult(env="production", operation="up", outcome=Outcome.FAILED,
                         before=State(version=V3, dirty=False),
                         after=State(version=V4, dirty=True) if dirty else State(version=V4, dirty=False),
                         steps=done, failure=StepFailure(version=version, name=NAMES[version], direction="up",
                                                         filename=f"{version}_{NAMES[version]}.up.sql", mode=mode,
                                                         error=error),
                         snapshot=PRE_MIGRATION.name, duration_ms=3_020.0)


def migrate_force() -> MigrateResult:
    return MigrateResult(env="production", operation="force", outcome=Outcome.DONE,
                         before=State(version=V4, dirty=True), after=State(version=V3, dirty=False),
                         snapshot="production_20260128_162800_v20260128004-dirty_pre-force")


def dry_run() -> DryRunResult:
    return DryRunResult(env="staging", state=State(version=V2, dirty=False), outcome=Outcome.FAILED, files=(
        DryRunFile(version=V3, name=NAMES[V3], filename=f"{V3}_{NAMES[V3]}.up.sql", status="ok", duration_ms=18.2),
        DryRunFile(version=V4, name=NAMES[V4], filename=f"{V4}_{NAMES[V4]}.up.sql", status="skipped",
                   note="CREATE INDEX CONCURRENTLY cannot run in a transaction; not tried"),
        DryRunFile(version=V5, name=NAMES[V5], filename=f"{V5}_{NAMES[V5]}.up.sql", status="failed",
                   error=SqlError(message='relation "event" does not exist', sqlstate="42P01", line=2, column=13)),
    ))


def dry_run_unchecked() -> DryRunResult:
    """Nothing failed, but one file could not run in a transaction at all and one only in part."""
    return DryRunResult(env="staging", state=State(version=V2, dirty=False), outcome=Outcome.DONE, files=(
        DryRunFile(version=V3, name=NAMES[V3], filename=f"{V3}_{NAMES[V3]}.up.sql", status="ok", duration_ms=18.2),
        DryRunFile(version=V4, name=NAMES[V4], filename=f"{V4}_{NAMES[V4]}.up.sql", status="skipped",
                   note="CREATE INDEX CONCURRENTLY (line 1) cannot run in a transaction: parsed, not run"),
        DryRunFile(version=V5, name=NAMES[V5], filename=f"{V5}_{NAMES[V5]}.up.sql", status="partial", duration_ms=4.0,
                   note="CREATE INDEX CONCURRENTLY (line 3) cannot run in a transaction: parsed, not run"),
    ))


def validate() -> ValidateResult:
    return ValidateResult(env="production", files_checked=9, outcome=Outcome.FAILED, problems=(
        FileProblem(filename="seed_dev.sql", severity="warning", message="skipped: not a migration file name"),
        FileProblem(filename=f"{V4}_{NAMES[V4]}.up.sql", severity="warning",
                    message="no down file: rolling back through this version changes nothing"),
        FileProblem(filename=f"{V5}_{NAMES[V5]}.up.sql", severity="error", message='syntax error at or near "COLUM"',
                    line=2, column=28),
    ))


def snapshot_created() -> SnapshotCreated:
    return SnapshotCreated(env="production", snapshot=snap(0, V5, "before rollback of migration 8"),
                           sha256="9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8",
                           database_size=570 * MB, duration_ms=41_800.0)


def verify_failed() -> SnapshotVerifyResult:
    return SnapshotVerifyResult(env="production", name=PRE_MIGRATION.name, outcome=Outcome.FAILED, checks=(
        Check(name="checksum", passed=False, detail="sha256 5be0c9a1d2e3… does not match the manifest's 9f2c1e7a4b5d…"),
    ))


def drill(passed: bool = True) -> DrillResult:
    checks = (Check(name="checksum", passed=True, detail="sha256 matches the manifest"),
              Check(name="readable", passed=True, detail="pg_restore reads 214 entries"),
              Check(name="restore", passed=True, detail="74.2 s"),
              Check(name="version", passed=passed, detail=f"{V5}, as the manifest says" if passed else
                    f"schema_migrations holds {V3}, the manifest says {V5}"),
              Check(name="row counts", passed=True, detail="public.events 1284311, public.users 48120 "
                                                           "(the manifest records none to compare)"),
              Check(name="foreign keys", passed=True, detail="no orphaned rows"))
    return DrillResult(env="production", name=PRE_MIGRATION.name, size=412 * MB, restore_ms=74_200,
                       scratch="embedded PostgreSQL", checks=checks,
                       outcome=Outcome.DONE if passed else Outcome.FAILED)


def drill_not_restored() -> DrillResult:
    return DrillResult(env="production", name=PRE_MIGRATION.name, size=412 * MB, scratch="the managed server",
                       outcome=Outcome.FAILED, recorded=False, checks=(
                           Check(name="checksum", passed=True, detail="sha256 matches the manifest"),
                           Check(name="restore", passed=False, detail="Restore of production_20260128_154500 failed "
                                 'and was rolled back; psql said: ERROR:  role "reporting" does not exist')))


def restore() -> RestoreResult:
    return RestoreResult(env="production", name=PRE_MIGRATION.name, mode="new-database",
                         safety_snapshot="production_20260128_162900_v20260128005_pre-restore-of-production-2026",
                         before=State(version=V5, dirty=False), after=State(version=V3, dirty=False),
                         largest_tables=(TableRows(table="public.events", rows=1_284_311),
                                         TableRows(table="public.users", rows=48_120),
                                         TableRows(table="public.organizations", rows=912)),
                         kept_database="togather_before_restore_20260128_162931", database="togather",
                         kept_size=570 * MB, jobs=4, duration_ms=96_400.0)


def pin() -> PinResult:
    return PinResult(env="production", name=PRE_MIGRATION.name, pinned=True, outcome=Outcome.DONE)


def cleanup(*, dry_run: bool) -> CleanupResult:
    old = (snap(60 * 24 * 9, V2, "manual", size=40 * MB), snap(60 * 24 * 12, V1, "pre-migration", size=38 * MB))
    kept = ((PRE_MIGRATION, "one of the newest 3"), (snap(60 * 26, V3, "before_risky_change", pinned=True), "pinned"),
            (snap(60 * 24 * 3, V2, "nightly"), "younger than 7 days"))
    after = DiskUsage(total=DISK.total, used=DISK.used - 78 * MB, free=DISK.free + 78 * MB,
                      snapshots_bytes=DISK.snapshots_bytes - 78 * MB)
    return CleanupResult(env="production", dry_run=dry_run, retention_days=7, keep_last=3, deleted=old, kept=kept,
                         freed_bytes=78 * MB, disk_before=DISK, disk_after=DISK if dry_run else after,
                         outcome=Outcome.DONE)


def history() -> HistoryResult:
    def entry(minutes_ago: float, actor: str, command: str, outcome: str, ms: float, **kw) -> AuditEntry:
        return AuditEntry(at=NOW - timedelta(minutes=minutes_ago), actor=actor, channel=kw.pop("channel", "C0INCIDENT"),
                          surface=kw.pop("surface", "slack"), environment="production", command=command,
                          arguments=kw.pop("arguments", {}), outcome=outcome, detail=kw.pop("detail", None),
                          duration_ms=ms)
    return HistoryResult(env="production", entries=(
        entry(3, "U0BOB", "migrate status", "done", 41),
        entry(12, "U0ALICE", "migrate up", "failed", 3020, arguments={"steps": None}),
        entry(40, "U0ALICE", "snapshot create", "done", 41800, arguments={"reason": "before deploy"}),
        entry(95, "deploy", "migrate up", "error", 120, channel=None, surface="cli",
              detail="PostgreSQL could not be reached: connection refused"),
    ))


def applied_file(v: int, *, minutes_ago: float, actor: str = "U0ALICE", direction: str = "up",
                 sha: str = "3f" * 32) -> AppliedFile:
    return AppliedFile(environment="production", version=v, previous=v - 1, name=NAMES[v], filename=f"{v}_{NAMES[v]}.{direction}.sql",
                       direction=direction, sha256=sha, actor=actor, operation=direction,
                       at=NOW - timedelta(minutes=minutes_ago), duration_ms=840)


EDITED = FileFlag(problem="edited", version=V2, filename=f"{V2}_{NAMES[V2]}.up.sql", current=V3,
                  recorded=applied_file(V2, minutes_ago=60 * 24), sha256="a7" * 32)
FILE_FLAGS = FileCheck(unchecked=1, flags=(
    EDITED,
    FileFlag(problem="out_of_order", version=20260128002_5, filename="202601280025_add_user_index.up.sql", current=V3),
    FileFlag(problem="gone", version=V3, filename=f"{V3}_{NAMES[V3]}.up.sql", current=V3,
             recorded=applied_file(V3, minutes_ago=50, actor="U0BOB")),
))


def status_flagged() -> StatusResult:
    return dataclasses.replace(status_clean(), files=FILE_FLAGS)


def status_unrecorded() -> StatusResult:
    return dataclasses.replace(status_clean(), files=FileCheck(
        unrecorded="no control database is configured, so no file is recorded"))


def history_files() -> HistoryResult:
    return dataclasses.replace(history(), files=(
        applied_file(V1, minutes_ago=12, direction="down", sha="0b" * 32),
        applied_file(V1, minutes_ago=14),
        applied_file(V5, minutes_ago=95, actor="deploy"),
    ))


def refusal(reason: Reason, **kw) -> Refusal:
    kw.setdefault("operation", "up")
    return Refusal(env="production", reason=reason, **kw)


NEW_DATABASE_SHORTFALL = Shortfall(
    role="app", setting='restore_mode = "in-place"',
    missing=(Missing(what="CREATEDB (the restore creates a database beside this one)", fix="ALTER ROLE app CREATEDB"),
             Missing(what="ownership of database togather (it is renamed aside, and kept)",
                     fix="ALTER DATABASE togather OWNER TO app")),
    setting_needs=(Missing(what="ownership of database togather (from PostgreSQL 15 the restore gives schema public "
                                "back to its owner, pg_database_owner)", fix="ALTER DATABASE togather OWNER TO app"),))


def usage_error() -> UsageError:
    with pytest.raises(UsageError) as caught:
        grammar.parse("/migrate dwon 2 production")
    return caught.value


# --- the two-person rule --------------------------------------------------------------------------

REQUEST_ID = "r1a2b3c4d5"
DOWN_IMPACT = Impact(before=State(version=V5, dirty=False), target=V3, reverts=(info(V5), info(V4, down=False)),
                     data_loss=(LossyStatement(filename=f"{V5}_{NAMES[V5]}.down.sql", line=1,
                                               description="drops column status of events"),
                                LossyStatement(filename=f"{V5}_{NAMES[V5]}.down.sql", line=3,
                                               description="drops table event_status_history")),
                     missing_down=(V4,))
# Reasons only the approve/deny/cancel commands give; WRONG_CHANNEL and CONTROL_UNREACHABLE are
# shared with Refusal.
APPROVAL_REASONS = {Reason.SELF_APPROVAL, Reason.NOT_APPROVER, Reason.EXPIRED, Reason.DECIDED, Reason.STATE_CHANGED,
                    Reason.NOT_REQUESTER, Reason.UNKNOWN_REQUEST, Reason.UNMAPPED_SHELL_USER}
SHARED_REASONS = {Reason.WRONG_CHANNEL, Reason.CONTROL_UNREACHABLE}
CONTROL_DOWN = ("control database: could not connect to postgresql://dbops:****@control.internal:5432/dbops: "
                "connection refused")
REFUSED_SAMPLES = {reason: f"approval_refused_{'self' if reason is Reason.SELF_APPROVAL else reason.value}"
                   for reason in APPROVAL_REASONS | SHARED_REASONS}


def request(state: str = "pending", *, operation: str = "down", command: str = "migrate down 2 production",
            impact: Impact = DOWN_IMPACT, **kw) -> ApprovalRequest:
    return ApprovalRequest(id=kw.pop("id", REQUEST_ID), env="production", operation=operation, command=command,
                           requester=kw.pop("requester", "U0BOB"), channel="C0INCIDENT", surface="slack",
                           fingerprint="9" * 64, impact=impact, state=state, created_at=NOW - timedelta(minutes=3),
                           expires_at=kw.pop("expires_at", NOW + timedelta(minutes=12)), **kw)


LOSS = LossEstimate(since=PRE_MIGRATION.created_at, counted=(
    TableLoss(table="public.users", columns=("created_at", "updated_at"), rows=1_204),
    TableLoss(table="public.orders", columns=("placed_at",), rows=88)),
    uncountable=(TableLoss(table="billing.invoices", columns=("created_at",), why="not counted within 5s"),),
    untracked=("public.audit_notes", "public.sessions", "public.tags"))
PRESERVED = PreserveReport(bundle="production_20260128_163004_preserved", tables=(
    TableReimport(table="public.users", exported=1_204, imported=1_190, conflicts=14),
    TableReimport(table="public.orders", exported=88, unfit=88, why="column discount no longer exists")),
    untracked=("public.audit_notes",))


def preserving_request(*, preserve: bool) -> ApprovalRequest:
    """A restore whose card counts the rows written since its snapshot, asked with or without --preserve."""
    flag = " --preserve" if preserve else ""
    return request(operation="restore", command=f"snapshot restore {PRE_MIGRATION.name}{flag} production",
                   impact=Impact(before=State(version=V5, dirty=False), snapshot=PRE_MIGRATION, loss=LOSS,
                                 restore_estimate=DRILLED_ESTIMATE))


def preserved_list() -> PreservedListResult:
    return PreservedListResult(env="production", where="/var/lib/togather/db-snapshots", bundles=(
        BundleInfo(name=PRESERVED.bundle, created_at=NOW - timedelta(minutes=2), snapshot=PRE_MIGRATION.name,
                   rows=1_292, tables=2, size=310_000, pinned=True),
        BundleInfo(name="production_20260120_101500_preserved", created_at=NOW - timedelta(days=8, hours=6),
                   snapshot="production_20260120_093000_v20260128001_manual", rows=3, tables=1, size=900,
                   pinned=False)))


def restore_request(source: str | None = None) -> ApprovalRequest:
    """A restore of production's own snapshot, or (``source``) of another environment's."""
    if source is None:
        return request(operation="restore", command=f"snapshot restore {PRE_MIGRATION.name} production",
                       impact=Impact(before=State(version=V5, dirty=False), snapshot=PRE_MIGRATION,
                                     restore_estimate=DRILLED_ESTIMATE))
    shown = dataclasses.replace(PRE_MIGRATION, name=STAGING_SNAPSHOT)
    return request(operation="restore", command=f"snapshot restore {STAGING_SNAPSHOT} production",
                   impact=Impact(before=State(version=V5, dirty=False), snapshot=shown, restore_from=source))


def cleanup_request() -> ApprovalRequest:
    deletes = tuple(snap(60 * 24 * (8 + i), V2, f"nightly {i}", size=40 * MB) for i in range(40))
    return request(operation="cleanup", command="snapshot cleanup production",
                   impact=Impact(before=State(version=V5, dirty=False), deletes=deletes,
                                 delete_bytes=sum(s.size for s in deletes)))


def approved(state: str = "executed", **kw) -> ApprovalRequest:
    return request(state, decided_by="U0ALICE", decided_at=NOW - timedelta(minutes=1), **kw)


def migrate_down() -> MigrateResult:
    return MigrateResult(env="production", operation="down", outcome=Outcome.DONE,
                         before=State(version=V5, dirty=False), after=State(version=V3, dirty=False), steps=(
                             StepReport(version=V5, name=NAMES[V5], direction="down",
                                        filename=f"{V5}_{NAMES[V5]}.down.sql", mode="transactional", duration_ms=61.0),
                             StepReport(version=V4, name=NAMES[V4], direction="down", filename=None,
                                        mode="transactional", duration_ms=0.4)),
                         snapshot=snap(1, V5, "pre-down").name, duration_ms=12_400.0)


# What a down from V5 to V3 removes, as the expected schemas of the two versions say: more
# than the card shows, so the rest goes to its thread.
SCHEMA_CHANGE = (
    (Difference(change=Change.REMOVED, kind="table", name="event_status_history"),
     Difference(change=Change.REMOVED, kind="column", name="events.status", summary="text"),
     Difference(change=Change.REMOVED, kind="index", name="idx_events_status",
                summary="CREATE INDEX idx_events_status ON public.events USING btree (status)"),
     Difference(change=Change.CHANGED, kind="column", name="users.age", attribute="type", expected="text",
                live="integer"))
    + tuple(Difference(change=Change.REMOVED, kind="function", name=f"event_status_{n}(event_id bigint)")
            for n in range(12)))
SCHEMA_UNAVAILABLE = ('The migration files do not apply to an empty database: 20260128004_add_audit_actor (line 2) '
                      'failed: relation "legacy_audit" does not exist. The expected schema of this version cannot be '
                      'built; fix the file (or `/migrate validate`), then check again.')


def schema_request(**impact) -> ApprovalRequest:
    return request(impact=dataclasses.replace(DOWN_IMPACT, **impact))


def approval_needed() -> ApprovalNeeded:
    return ApprovalNeeded(env="production", request=request())


DROP_FILE = f"{V4}_{NAMES[V4]}.up.sql"
FINDINGS = (  # in file order: the blocking one is not the first, and every surface lists it first
    Finding(rule="renaming-column", severity="warning", filename=DROP_FILE, line=2, source="squawk",
            message="Renaming a column may break existing clients."),
    Finding(rule="not-null-without-default", severity="info", filename=DROP_FILE, line=2,
            message="adds NOT NULL column audit_log.actor without a DEFAULT: it fails on a table that has rows.",
            live_judgement="audit_log is created by migration 20260201001 in this same run: it holds no live data yet"),
    Finding(rule="drop-column", severity="error", filename=DROP_FILE, line=3,
            message="drops column users.deprecated_field: its data is gone, and the down file cannot bring it back."),
    Finding(rule="rename-table", severity="error", filename=DROP_FILE, line=7, allowed_by="no client reads <users> yet",
            message="renames table users to accounts: the running application still uses the old name."),
)


DIFFERENCES = (
    Difference(change=Change.ADDED, kind="column", name="users.email", summary="text"),
    Difference(change=Change.CHANGED, kind="column", name="users.age", attribute="type", expected="integer",
               live="text"),
    Difference(change=Change.CHANGED, kind="column", name="users.age", attribute="not_null", expected=True,
               live=False),
    Difference(change=Change.REMOVED, kind="index", name="idx_events_start",
               summary="CREATE INDEX idx_events_start ON public.events USING btree (starts_at)"),
    Difference(change=Change.BROKEN, kind="index", name="idx_x", attribute="valid"),
    Difference(change=Change.BROKEN, kind="constraint", name="users.users_email_check", attribute="validated"),
    Difference(change=Change.CHANGED, kind="function", name="adult(age integer)", attribute="body_md5",
               expected="0f3a", live="9c1d"),
)


def drift_result(differences=DIFFERENCES, **changes) -> DriftResult:
    result = DriftResult(env="production", state=State(version=V5, dirty=False), differences=differences,
                         built_on="the managed server", expected_major=17, live_major=17,
                         outcome=Outcome.FAILED if differences else Outcome.DONE)
    return dataclasses.replace(result, **changes)


def plan_result() -> PlanResult:
    return PlanResult(env="production", state=State(version=V3, dirty=False), block_severity="error", blocking=1,
                      outcome=Outcome.FAILED, files=(
        PlanFile(version=V4, name=NAMES[V4], filename=DROP_FILE, mode="transactional", findings=FINDINGS,
                 locks=(LockEstimate(line=3, table="users", lock="ACCESS EXCLUSIVE", statement="ALTER TABLE"),)),
        PlanFile(version=V5, name=NAMES[V5], filename=f"{V5}_{NAMES[V5]}.up.sql", mode="no-transaction", findings=(
            Finding(rule="missing-down", severity="warning", filename=f"{V5}_{NAMES[V5]}.up.sql", line=None,
                    message="no down file: rolling back through this version changes nothing."),),
                 locks=(LockEstimate(line=1, table="events", lock="SHARE UPDATE EXCLUSIVE",
                                     statement="CREATE INDEX CONCURRENTLY"),))))


def up_request() -> ApprovalNeeded:
    return ApprovalNeeded(env="production", request=request(
        operation="up", command="migrate up production",
        impact=Impact(before=State(version=V3, dirty=False), target=V5, applies=(info(V4), info(V5, down=False)),
                      findings=FINDINGS, block_severity="error")))


def dry_run_request() -> ApprovalNeeded:
    return ApprovalNeeded(env="production", request=request(
        operation="dry-run", command="migrate dry-run production",
        impact=Impact(before=State(version=V3, dirty=False), target=V5, applies=(info(V4), info(V5, down=False)))))


def approval_refused(reason: Reason) -> ApprovalRefused:
    match reason:
        case Reason.UNKNOWN_REQUEST:
            return ApprovalRefused(env=None, request_id=REQUEST_ID, reason=reason)
        case Reason.CONTROL_UNREACHABLE:
            return ApprovalRefused(env=None, request_id=REQUEST_ID, reason=reason, detail=CONTROL_DOWN)
        case Reason.EXPIRED:
            return ApprovalRefused(env="production", request_id=REQUEST_ID, reason=reason,
                                   request=request("expired", expires_at=NOW - timedelta(minutes=2)))
        case Reason.DECIDED:
            return ApprovalRefused(env="production", request_id=REQUEST_ID, reason=reason,
                                   request=approved("executing"))
        case Reason.STATE_CHANGED:
            detail = f"when it was requested the database was at {V5}; now it is at {V4} (dirty)"
            return ApprovalRefused(env="production", request_id=REQUEST_ID, reason=reason, detail=detail,
                                   request=approved("void", reason=detail))
        case Reason.UNMAPPED_SHELL_USER:  # the console on a real configuration, as an account [cli] users lacks
            return ApprovalRefused(env="production", request_id=REQUEST_ID, reason=reason, detail="deploy",
                                   request=request())
    return ApprovalRefused(env="production", request_id=REQUEST_ID, reason=reason, request=request())


def approval_decided() -> ApprovalDecided:
    return ApprovalDecided(env="production", request=approved(), result=migrate_down())


def approvals_list() -> ApprovalsResult:
    return ApprovalsResult(env=None, pending=(
        request(),
        request(id="r9f8e7d6c5", operation="restore", command=f"snapshot restore {PRE_MIGRATION.name} production",
                requester="U0CAROL"),
    ))


# --- /rollback ----------------------------------------------------------------------------------------------

LOSES_STATUS = f"{V5}_{NAMES[V5]}.down.sql line 1: drops column status of events"
LOST_SINCE = f"Everything written since {PRE_MIGRATION.created_at:%Y-%m-%d %H:%M:%S} UTC is lost."


# A restore's time from a drill of another snapshot (412 MB in 74.2 s), scaled to this one's size.
DRILLED_ESTIMATE = RestoreEstimate(seconds=PRE_MIGRATION.size / (412 * MB / 74.2), size=PRE_MIGRATION.size,
                                   drilled="production_20260127_030000_v20260128003_manual",
                                   drilled_at=datetime(2026, 1, 27, 3, 5, tzinfo=UTC), rate=412 * MB / 74.2)
# No drill yet: the size at the assumed rate.
ASSUMED_ESTIMATE = RestoreEstimate(seconds=PRE_MIGRATION.size / (2 * 1024 * 1024), size=PRE_MIGRATION.size,
                                   rate=2 * 1024 * 1024)


def restore_option(*, recommended: bool) -> RollbackOption:
    return RollbackOption(method="restore", command=f"/rollback --snapshot {PRE_MIGRATION.name} production",
                          recommended=recommended, available=True, warnings=(LOST_SINCE,),
                          impact=Impact(before=State(version=V5, dirty=False), snapshot=PRE_MIGRATION,
                                        restore_estimate=ASSUMED_ESTIMATE))


def rollback_plan_clean() -> RollbackPlan:
    down = RollbackOption(method="down", command="/rollback --steps 1 production", recommended=True, available=True,
                          impact=Impact(before=State(version=V5, dirty=False), target=V4, reverts=(info(V5),),
                                        data_loss=(LossyStatement(filename=f"{V5}_{NAMES[V5]}.down.sql", line=1,
                                                                  description="drops column status of events"),)),
                          warnings=(LOSES_STATUS,))
    return RollbackPlan(env="production", state=State(version=V5, dirty=False), migration=info(V5),
                        options=(down, restore_option(recommended=False)))


def rollback_plan_dirty() -> RollbackPlan:
    dirty = State(version=V4, dirty=True)
    return RollbackPlan(env="production", state=dirty, migration=info(V4), options=(
        dataclasses.replace(restore_option(recommended=True), impact=Impact(before=dirty, snapshot=PRE_MIGRATION)),
        RollbackOption(method="force-previous", command=f"/migrate force {V3} production", recommended=False,
                       available=True, impact=Impact(before=dirty, target=V3), warnings=(
                           f"Only if migration {V4} changed nothing, or you have undone its changes by hand: this "
                           f"records version {V3} as clean and runs no SQL. Then fix the file and run `/migrate up` "
                           "again.",)),
        RollbackOption(method="force-down", command="/rollback --steps 1 production", recommended=False,
                       available=True, impact=Impact(before=dirty), warnings=(
                           f"Marks the half-applied {V4} as applied, then runs its down file: a down file that assumes "
                           "the whole migration ran (no IF EXISTS) may fail half-way and leave it dirty again.",))))


def rollback_plan_missing_down() -> RollbackPlan:
    return RollbackPlan(env="production", state=State(version=V4, dirty=False), migration=info(V4, down=False),
                        options=(dataclasses.replace(restore_option(recommended=True),
                                                     impact=Impact(before=State(version=V4, dirty=False),
                                                                   snapshot=PRE_MIGRATION)),
                                 RollbackOption(method="down", command="/rollback --steps 1 production",
                                                recommended=False, available=False,
                                                why_not=f"version {V4} has no down file: golang-migrate would only "
                                                        "change the recorded version and undo nothing")))


def rollback_down_step() -> MigrateResult:
    return MigrateResult(env="production", operation="down", outcome=Outcome.DONE,
                         before=State(version=V5, dirty=False), after=State(version=V4, dirty=False), steps=(
                             StepReport(version=V5, name=NAMES[V5], direction="down",
                                        filename=f"{V5}_{NAMES[V5]}.down.sql", mode="transactional", duration_ms=61.0),),
                         snapshot=snap(1, V5, "pre-down").name, duration_ms=12_400.0)


def rollback_result(**kw) -> RollbackResult:
    fields = dict(env="production", method="down", reason="event status broke the <!channel> feed & `search`",
                  requester="U0BOB", approved_by="U0ALICE", before=State(version=V5, dirty=False),
                  after=State(version=V4, dirty=False), expected_version=V4, step=rollback_down_step(),
                  snapshots=(snap(1, V5, "pre-down").name,), foreign_keys_checked=12, orphans=(),
                  app_health=AppHealthCheck(url="https://togather.example.com/health", passed=True,
                                            message="Migrations applied successfully (version 20260128004)",
                                            version=V4, dirty=False),
                  recorded=True, deployment_state="/opt/togather/deploy/config/deployment-state.json")
    return RollbackResult(**{**fields, **kw})


# Which version the schema really is, and what acts on it: status, the recovery, baseline.
INVALID_INDEX_DROP = 'DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_events_start_time";'
RECOVERABLE = SchemaVersion(closest=V3, compared=(V4, V3), failed=V4, previous=V3,
                            differences=(Difference(change=Change.ADDED, kind="index", name="idx_events_start_time",
                                                    summary="CREATE INDEX idx_events_start_time ON public.events "
                                                            "USING btree (starts_at)"),),
                            present=("index idx_events_start_time (INVALID)",),
                            leftovers=(Leftover(kind="index", name="idx_events_start_time", invalid=True,
                                                removable=True, statement=INVALID_INDEX_DROP),))


def status_dirty_recoverable() -> StatusResult:
    return dataclasses.replace(status_clean(), state=State(version=V4, dirty=True), pending=(info(V5),),
                               applied=(info(V1), info(V2), info(V3), info(V4)), schema_version=RECOVERABLE)


def status_no_version_matched() -> StatusResult:
    return dataclasses.replace(status_clean(), state=State(version=-1, dirty=False), applied=(),
                               pending=tuple(info(v) for v in (V1, V2, V3, V4, V5)), newest_snapshot=None,
                               schema_version=SchemaVersion(matches=V3, compared=(V5, V4, V3)))


def status_no_version_closest() -> StatusResult:
    return dataclasses.replace(status_no_version_matched(), schema_version=SchemaVersion(
        closest=V3, compared=(V5, V4, V3, V2, V1, -1), bounded=True, differences=DIFFERENCES[:3]))


def rollback_plan_recover() -> RollbackPlan:
    dirty = State(version=V4, dirty=True)
    plan = rollback_plan_dirty()
    recover = RollbackOption(method="recover", command="/rollback --recover production", recommended=True,
                             available=True, impact=Impact(before=dirty, target=V3, drops=(INVALID_INDEX_DROP,)),
                             warnings=(f"Loses nothing: what it drops holds no data, and every migration before {V4} "
                                       "and every write since stay.",))
    restore = dataclasses.replace(plan.options[0], recommended=False)
    return dataclasses.replace(plan, options=(recover, restore) + plan.options[1:], schema_version=RECOVERABLE)


def recover_request() -> ApprovalRequest:
    return request(operation="force", command="rollback --recover --reason 'index build failed' production",
                   impact=Impact(before=State(version=V4, dirty=True), target=V3, drops=(INVALID_INDEX_DROP,)))


def rollback_result_recover() -> RollbackResult:
    step = MigrateResult(env="production", operation="recover", outcome=Outcome.DONE,
                         before=State(version=V4, dirty=True), after=State(version=V3, dirty=False),
                         snapshot=snap(1, V4, "pre-recover").name)
    return rollback_result(method="recover", before=step.before, after=step.after, expected_version=V3, step=step,
                           snapshots=(step.snapshot,), dropped=(INVALID_INDEX_DROP,), reason="index build failed")


def baseline_result(outcome: Outcome = Outcome.DONE) -> BaselineResult:
    before = State(version=-1, dirty=False)
    if outcome is Outcome.REFUSED:
        return BaselineResult(env="production", version=V3, before=before, after=before, differences=DIFFERENCES,
                              outcome=outcome)
    return BaselineResult(env="production", version=V3, before=before, after=State(version=V3, dirty=False),
                          snapshot=snap(1, None, "pre-baseline").name)


def rollback_result_orphans() -> RollbackResult:
    return rollback_result(approved_by=None, deployment_state=None, orphans=(
        OrphanCount(constraint="orders_user_id_fkey", table="orders", columns=("user_id",), references="users", rows=3),
        OrphanCount(constraint="events_place_fkey", table="events", columns=("place_id", "org_id"),
                    references="places", rows=1)),
        app_health=AppHealthCheck(url="https://togather.example.com/health", passed=False,
                                  message="HTTP 503: migrations check failed", version=V5, dirty=False),
        outcome=Outcome.DONE)


LOCK_DIR = "/tmp/togather-migration-production.lock"


def lock_status(*, held: bool) -> LockStatusResult:
    dirs = (LockDirInfo(path=LOCK_DIR, exists=True, locked_at=NOW - timedelta(minutes=95), locked_at_source="file",
                        pid=31337, pid_alive=False, stale=True),
            LockDirInfo(path="/tmp/togather-deploy-production.lock", exists=False)) if held else ()
    return LockStatusResult(env="production", holder=dataclasses.replace(HOLDER, state_since=NOW - timedelta(minutes=11))
                            if held else None, stale_after_minutes=15, lock_dirs=dirs, lock_dir_timeout_minutes=30)


def lock_release(*, done: bool) -> LockReleaseResult:
    if done:
        return LockReleaseResult(env="production", holder=HOLDER, terminated=HOLDER.pid, outcome=Outcome.DONE,
                                 removed=(lock_status(held=True).lock_dirs[0],), kept=())
    return LockReleaseResult(env="production", holder=dataclasses.replace(HOLDER, state="active"), terminated=None,
                             removed=(), kept=(("advisory lock", "holder_active"), (LOCK_DIR, "dir_owner_alive")),
                             outcome=Outcome.REFUSED)


def lock_alert(subject: str, kind: str = "opened") -> Message:
    alert = Alert(id=3, env="production", subject=subject, version=HOLDER.pid, opened_at=NOW - timedelta(minutes=5),
                  notified_at=NOW - timedelta(minutes=5), reminders=0, failed_file=None, latest_file_version=None,
                  snapshot=None, holder=HOLDER if subject == "stale_lock" else None,
                  lock_dir=lock_status(held=True).lock_dirs[0] if subject == "stale_lock_dir" else None,
                  disk=DiskWatchInfo(directory="/var/lib/togather/db-snapshots", total=100 * GB, used=86 * GB,
                                     free=9 * GB, percent=91.0, threshold=85,
                                     biggest=(snap(60 * 24 * 9, V2, "manual", size=3 * GB), PRE_MIGRATION),
                                     oldest=(snap(60 * 24 * 30, V1, "before launch", pinned=True),))
                  if subject == "disk" else None,
                  resolved_at=NOW if kind == "resolved" else None, resolved_by="U0ALICE" if kind == "resolved" else None,
                  resolved_with="dbops lock release" if kind == "resolved" else None)
    event = AlertEvent(kind=kind, alert=alert)
    return blocks_locks.alert(event, now=NOW) if kind == "opened" else blocks_locks.resolved(event, now=NOW)


def drift_alert(kind: str = "opened", *, superseded: bool = False) -> Message:
    alert = Alert(id=4, env="production", subject="drift", version=V5, opened_at=NOW - timedelta(hours=2),
                  notified_at=NOW - timedelta(minutes=30), reminders=1 if kind == "reminder" else 0,
                  failed_file=None, latest_file_version=V5, snapshot=None,
                  drift=DriftWatchInfo(version=V5, digest="0" * 64, total=len(DIFFERENCES) + 40,
                                       differences=DIFFERENCES),
                  resolved_at=NOW if kind == "resolved" else None)
    event = AlertEvent(kind=kind, alert=alert, state=State(version=V5, dirty=False), superseded=superseded)
    render_kind = {"opened": blocks_drift.alert, "reminder": blocks_drift.reminder, "resolved": blocks_drift.resolved}
    return render_kind[kind](event, now=NOW)


def doctor_result() -> DoctorResult:
    check = lambda name, verdict, detail, fix=None: DoctorCheck(name=name, verdict=verdict, detail=detail, fix=fix)
    return DoctorResult(env="production", outcome=Outcome.FAILED, checks=(
        check("database connection", Verdict.PASS, "connected as togather to togather (PostgreSQL 16.4)"),
        check("control database", Verdict.PASS, "reachable; dbops' schema is at version 7"),
        check("client tools", Verdict.PASS, "pg_dump 18 for PostgreSQL 16.4"),
        check("migration privileges", Verdict.PASS,
              "role togather can write public.schema_migrations and owns every object in the user schemas"),
        check("snapshot privileges", Verdict.PASS, "role togather can read every table and sequence (pg_dump)"),
        check("restore privileges (new-database)", Verdict.FAIL,
              'restore_mode = "new-database" needs what role togather lacks: CREATEDB (the restore creates a database '
              "beside this one). /snapshot restore and /rollback --snapshot would fail, changing nothing",
              'ALTER ROLE togather CREATEDB. Or set restore_mode = "in-place" under [environments.production]: this '
              "role can do that."),
        check("lock release privileges", Verdict.WARN,
              "role togather is not a member of pg_signal_backend (to end another role's session): /dbops lock "
              "release ends only sessions of togather itself; a stale lock held by another role is kept, and said so",
              "GRANT pg_signal_backend TO togather (as a superuser or the service's admin role), or end such a "
              "session as its own role"),
        check("unblock privileges", Verdict.WARN,
              "role togather is not a member of pg_signal_backend (to signal another role's session): /migrate "
              "unblock signals only sessions of its own role (or of roles it is a member of); a superuser's session "
              "is never signalled",
              "GRANT pg_signal_backend TO togather (as a superuser or the service's admin role)"),
        check("abandoned restores", Verdict.WARN,
              "database togather_restoring_20260128_161502 is left from a restore of togather killed part-way: "
              "half-loaded, taking space, and used by nothing",
              "The next /snapshot restore production drops it first. Or, unless a restore is running now (/dbops "
              "lock status production), by hand: DROP DATABASE togather_restoring_20260128_161502 WITH (FORCE);"),
        check("snapshot directory", Verdict.PASS, "/var/lib/togather/db-snapshots is writable"),
        check("free space", Verdict.PASS, "39.0 GB free in /var/lib/togather/db-snapshots; the database is 570.0 MB, "
                                          "212.0 MB of it table data (what a snapshot holds, before zstd)"),
        check("migration files", Verdict.FAIL, "1 problem in internal/storage/postgres/migrations: "
                                               f"{V5}_{NAMES[V5]}.up.sql line 2: syntax error at or near \"COLUM\"",
              "Fix the files (/migrate validate production lists every problem); nothing runs a file that "
              "does not parse."),
        check("lock directories", Verdict.PASS, "/tmp/togather-migration-production.lock: free, and can be taken"),
        check("app health check", Verdict.SKIP, "not configured (health_url): a rollback cannot check the app "
                                                "afterwards"),
        check("app hooks", Verdict.WARN,
              "no health_url: after the resume hook nothing is awaited, so a restore reports done without knowing "
              "whether the application came back; pause POST https://deploy.example.com/apps/togather/pause and "
              "resume POST https://deploy.example.com/apps/togather/resume (not called: a doctor never pauses the "
              "application; it only opens a connection, sending no request); headers Authorization (from "
              "${DEPLOY_TOKEN})",
              "Set health_url under [environments.production] to the application's health check."),
        check("Slack token", Verdict.PASS, "auth.test: authenticated as dbops in workspace togather")))


SAMPLES = {
    "doctor": lambda: render(doctor_result(), now=NOW, command="/dbops doctor production"),
    "lock_status_held": lambda: render(lock_status(held=True), now=NOW, command="/dbops lock status production"),
    "lock_status_free": lambda: render(lock_status(held=False), now=NOW, command="/dbops lock status production"),
    "lock_release_done": lambda: render(lock_release(done=True), now=NOW, command="/dbops lock release production"),
    "lock_release_refused": lambda: render(lock_release(done=False), now=NOW,
                                           command="/dbops lock release production"),
    "alert_stale_lock": lambda: lock_alert("stale_lock"),
    "alert_stale_lock_dir": lambda: lock_alert("stale_lock_dir"),
    "alert_disk": lambda: lock_alert("disk"),
    "alert_drift": lambda: drift_alert(),
    "alert_drift_reminder": lambda: drift_alert("reminder"),
    "alert_drift_resolved": lambda: drift_alert("resolved"),
    "alert_drift_superseded": lambda: drift_alert("resolved", superseded=True),
    "alert_stale_lock_resolved": lambda: lock_alert("stale_lock", "resolved"),
    "status_clean": lambda: render(status_clean(), now=NOW, command="/migrate status production"),
    "status_dirty": lambda: render(status_dirty(), now=NOW, command="/migrate status production"),
    "snapshot_list": lambda: render(snapshot_list(), now=NOW, command="/snapshot list production"),
    "snapshot_list_page": lambda: render(snapshot_page(), now=NOW, command="/snapshot list production"),
    "snapshot_list_older": lambda: render(snapshot_page(before=PRE_MIGRATION.name), now=NOW,
                                          command=f"/snapshot list production --before {PRE_MIGRATION.name}"),
    "snapshot_list_last_page": lambda: render(snapshot_last_page(), now=NOW,
                                              command=f"/snapshot list production --before {PRE_MIGRATION.name}"),
    "migrate_done": lambda: render(migrate_done(), now=NOW, command="/migrate up production"),
    "migrate_failed_clean": lambda: render(migrate_failed(dirty=False), now=NOW, command="/migrate up production"),
    "migrate_failed_dirty": lambda: render(migrate_failed(dirty=True), now=NOW, command="/migrate up production"),
    "migrate_force": lambda: render(migrate_force(), now=NOW, command=f"/migrate force {V3} production"),
    "dry_run": lambda: render(dry_run(), now=NOW, command="/migrate dry-run staging"),
    "dry_run_unchecked": lambda: render(dry_run_unchecked(), now=NOW, command="/migrate dry-run staging"),
    "validate": lambda: render(validate(), now=NOW, command="/migrate validate production"),
    "plan": lambda: render(plan_result(), now=NOW, command="/migrate plan production"),
    "drift": lambda: render(drift_result(), now=NOW, command="/migrate drift production"),
    "drift_none": lambda: render(drift_result((), cached=True), now=NOW, command="/migrate drift production"),
    "drift_many_on_embedded": lambda: render(drift_result(tuple(
        Difference(change=Change.ADDED, kind="table", name=f"extra_{i:03}") for i in range(120)),
        built_on="embedded PostgreSQL", expected_major=18), now=NOW, command="/migrate drift production"),
    "drift_no_version": lambda: render(drift_result((), state=State(version=-1, dirty=False), unmeasured="no_version",
                                                    outcome=Outcome.REFUSED), now=NOW, command="/migrate drift production"),
    "drift_dirty": lambda: render(drift_result((), state=State(version=V5, dirty=True), unmeasured="dirty",
                                               outcome=Outcome.REFUSED), now=NOW, command="/migrate drift production"),
    "plan_nothing_pending": lambda: render(dataclasses.replace(plan_result(), files=(), blocking=0,
                                                               outcome=Outcome.NO_CHANGE),
                                           now=NOW, command="/migrate plan production"),
    "approval_request_down_schema": lambda: render(
        ApprovalNeeded(env="production", request=schema_request(schema_change=SCHEMA_CHANGE)), now=NOW,
        command="/migrate down 2 production"),
    "approval_request_schema_unavailable": lambda: render(
        ApprovalNeeded(env="production", request=schema_request(schema_unavailable=SCHEMA_UNAVAILABLE)), now=NOW,
        command="/migrate down 2 production"),
    "approval_schema_thread": lambda: schema_thread(schema_request(schema_change=SCHEMA_CHANGE)),
    "approval_request_up_findings": lambda: render(up_request(), now=NOW, command="/migrate up production"),
    "approval_request_dry_run": lambda: render(dry_run_request(), now=NOW, command="/migrate dry-run production"),
    "snapshot_create": lambda: render(snapshot_created(), now=NOW,
                                      command='/snapshot create production --reason "before rollback of migration 8"'),
    "verify_failed": lambda: render(verify_failed(), now=NOW, command=f"/snapshot verify {PRE_MIGRATION.name}"),
    "restore": lambda: render(restore(), now=NOW, command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "restore_preserved": lambda: render(dataclasses.replace(restore(), preserved=PRESERVED), now=NOW,
                                        command=f"/snapshot restore {PRE_MIGRATION.name} production --preserve"),
    "preserved_list": lambda: render(preserved_list(), now=NOW, command="/snapshot preserved production"),
    "reimport_done": lambda: render(ReimportResult(env="production", report=PRESERVED), now=NOW,
                                    command=f"/snapshot reimport {PRESERVED.bundle} production"),
    "drill_passed": lambda: render(drill(), now=NOW, command="/snapshot drill production"),
    "drill_version_differs": lambda: render(drill(passed=False), now=NOW, command="/snapshot drill production"),
    "drill_not_restored": lambda: render(drill_not_restored(), now=NOW, command="/snapshot drill production"),
    "drill_nothing": lambda: render(DrillResult(env="production", name=None, outcome=Outcome.NO_CHANGE), now=NOW,
                                    command="/snapshot drill production"),
    "pin": lambda: render(pin(), now=NOW, command=f"/snapshot pin {PRE_MIGRATION.name}"),
    "cleanup_dry_run": lambda: render(cleanup(dry_run=True), now=NOW, command="/snapshot cleanup --dry-run"),
    "cleanup": lambda: render(cleanup(dry_run=False), now=NOW, command="/snapshot cleanup"),
    "history": lambda: render(history(), now=NOW, command="/dbops history production"),
    "history_files": lambda: render(history_files(), now=NOW, command="/dbops history production"),
    "status_files_flagged": lambda: render(status_flagged(), now=NOW, command="/migrate status production"),
    "status_files_unrecorded": lambda: render(status_unrecorded(), now=NOW, command="/migrate status production"),
    "plan_files_flagged": lambda: render(dataclasses.replace(plan_result(), files_check=FILE_FLAGS), now=NOW,
                                         command="/migrate plan production"),
    "refusal_edited_applied_file": lambda: render(
        refusal(Reason.EDITED_APPLIED_FILE, state=State(version=V3, dirty=False), files=(EDITED,)), now=NOW,
        command="/migrate up production"),
    "refusal_blocked": lambda: render(
        refusal(Reason.BLOCKED, state=State(version=V3, dirty=False), detail="wait", blockers=(IDLE_BLOCKER,)),
        now=NOW, command="/migrate up production"),
    "help": lambda: render(HelpResult(usage=grammar.all_usage()), now=NOW, command="/dbops help"),
    "refusal_lock_held": lambda: render(refusal(Reason.LOCK_HELD, holder=HOLDER), now=NOW,
                                        command="/migrate up production"),
    "refusal_dirty": lambda: render(refusal(Reason.DIRTY, state=State(version=V4, dirty=True)), now=NOW,
                                    command="/migrate up production"),
    "refusal_version_mismatch": lambda: render(
        refusal(Reason.VERSION_MISMATCH, state=State(version=20260130001, dirty=False),
                mismatch=Mismatch(database_version=20260130001, latest_file_version=V5, ahead=True)),
        now=NOW, command="/migrate up production"),
    "refusal_syntax_error": lambda: render(refusal(Reason.SYNTAX_ERROR, state=State(version=V3, dirty=False), problems=(
        FileProblem(filename=f"{V5}_{NAMES[V5]}.up.sql", severity="error", message='syntax error at or near "COLUM"',
                    line=2, column=28),)), now=NOW, command="/migrate up production"),
    "refusal_snapshot_damaged": lambda: render(
        refusal(Reason.SNAPSHOT_DAMAGED, operation="snapshot restore", snapshot=PRE_MIGRATION.name,
                checks=verify_failed().checks), now=NOW, command=f"/snapshot restore {PRE_MIGRATION.name}"),
    "refusal_no_approvals": lambda: render(refusal(Reason.NO_APPROVALS, operation="migrate down"), now=NOW,
                                           command="/migrate down 1 production"),
    "refusal_no_snapshot_dir": lambda: render(refusal(Reason.NO_SNAPSHOT_DIR, operation="snapshot list"), now=NOW,
                                              command="/snapshot list production"),
    "refusal_wrong_channel": lambda: render(refusal(Reason.WRONG_CHANNEL, operation="migrate up",
                                                    allowed=("C0INCIDENT",)), now=NOW, command="/migrate up production"),
    "refusal_wrong_channel_none": lambda: render(refusal(Reason.WRONG_CHANNEL, operation="migrate status"), now=NOW,
                                                 command="/migrate status production"),
    "refusal_not_operator": lambda: render(refusal(Reason.NOT_OPERATOR, operation="migrate up",
                                                   allowed=("U0ALICE", "S0DBAS")), now=NOW,
                                           command="/migrate up production"),
    "refusal_not_operator_dry_run": lambda: render(refusal(Reason.NOT_OPERATOR, operation="migrate dry-run",
                                                           allowed=("U0ALICE", "S0DBAS")), now=NOW,
                                                   command="/migrate dry-run production"),
    "refusal_other_environment": lambda: render(
        refusal(Reason.OTHER_ENVIRONMENT, operation="snapshot restore", snapshot=STAGING_SNAPSHOT, owner="staging"),
        now=NOW, command=f"/snapshot restore {STAGING_SNAPSHOT} production"),
    "refusal_other_environment_pin": lambda: render(
        refusal(Reason.OTHER_ENVIRONMENT, operation="snapshot pin", snapshot=STAGING_SNAPSHOT, owner="staging"),
        now=NOW, command=f"/snapshot pin {STAGING_SNAPSHOT} production"),
    "refusal_unclaimed_snapshot": lambda: render(
        refusal(Reason.UNCLAIMED_SNAPSHOT, operation="snapshot restore", snapshot="togather_togather_20260119_163000",
                claimants=("development", "production")),
        now=NOW, command="/snapshot restore togather_togather_20260119_163000 production"),
    "refusal_manifest_mismatch": lambda: render(
        refusal(Reason.MANIFEST_MISMATCH, operation="snapshot restore", snapshot=PRE_MIGRATION.name,
                owner="production", claimants=("staging",)),
        now=NOW, command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "refusal_control_unreachable": lambda: render(refusal(Reason.CONTROL_UNREACHABLE, operation="migrate up",
                                                          detail=CONTROL_DOWN), now=NOW,
                                                  command="/migrate up production"),
    "status_audit_unwritten": lambda: render(dataclasses.replace(status_clean(),
                                                                 audit_unwritten="control database unreachable"),
                                             now=NOW, command="/migrate status production"),
    "refusal_missing_privilege": lambda: render(
        refusal(Reason.MISSING_PRIVILEGE, operation="snapshot restore", shortfall=NEW_DATABASE_SHORTFALL),
        now=NOW, command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "refusal_missing_privilege_lock_release": lambda: render(
        refusal(Reason.MISSING_PRIVILEGE, operation="dbops lock release", shortfall=Shortfall(
            role="app", missing=(Missing(what="membership in pg_signal_backend (to end another role's session)",
                                         fix="GRANT pg_signal_backend TO app"),))),
        now=NOW, command="/dbops lock release production"),
    "privilege_error": lambda: render_error(privilege_error('must be owner of table "users"'),
                                            command="/migrate status production"),
    "usage_error": lambda: render_error(usage_error(), command="/migrate dwon 2 production"),
    "snapshot_failed_error": lambda: render_error(SnapshotFailed(
        "The snapshot before up failed, so nothing was changed. Not enough disk space: /var/lib/togather/db-snapshots "
        "has 120.0 MB free; the database is 570.0 MB. pg_dump said: could not write to output file: No space left on "
        "device. Nothing was kept."), command="/migrate up production"),
    "progress_snapshot": lambda: render_progress(command="/migrate up production", user="U0ALICE", elapsed_s=42.4,
                                                 progress=Progress(step="snapshot", read_bytes=120 * MB,
                                                                   written_bytes=31 * MB, total_bytes=570 * MB)),
    "internal_error": lambda: render_internal_error(command="/migrate up production", reference="3f9a1c07be21"),
    "interrupted": lambda: render_interrupted(OperationRecord(
        id=7, environment="production", command="/migrate up production", actor="U0ALICE", channel="C0INCIDENT",
        message_ts="1769617800.000100", owner="bot-1:812:1a2b3c4d", step="apply", started_at=NOW - timedelta(minutes=9),
        heartbeat_at=NOW - timedelta(minutes=6))),
    "approval_request_down": lambda: render(approval_needed(), now=NOW, command="/migrate down 2 production"),
    "approval_request_restore_loss": lambda: render(
        ApprovalNeeded(env="production", request=preserving_request(preserve=False)), now=NOW,
        command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "approval_request_restore_preserve": lambda: render(
        ApprovalNeeded(env="production", request=preserving_request(preserve=True)), now=NOW,
        command=f"/snapshot restore {PRE_MIGRATION.name} production --preserve"),
    "approval_request_restore": lambda: render(ApprovalNeeded(env="production", request=restore_request()), now=NOW,
                                               command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "approval_request_restore_from": lambda: render(
        ApprovalNeeded(env="production", request=restore_request(source="staging")), now=NOW,
        command=f"/snapshot restore {STAGING_SNAPSHOT} production"),
    "approval_request_cleanup": lambda: render(ApprovalNeeded(env="production", request=cleanup_request()), now=NOW,
                                               command="/snapshot cleanup production"),
    "approval_final_executed": lambda: render_request_final(
        approved(), now=NOW, result_message=render(migrate_down(), now=NOW, command="/migrate down 2 production")),
    "approval_final_denied": lambda: render_request_final(
        approved("denied", reason="not during the incident: wait until the deploy is rolled back"), now=NOW),
    "approval_final_void": lambda: render_request_final(approval_refused(Reason.STATE_CHANGED).request, now=NOW),
    "approval_decided": lambda: render(approval_decided(), now=NOW, command=f"/dbops approve {REQUEST_ID}"),
    "approval_cancelled": lambda: render(ApprovalDecided(env="production", request=request(
        "cancelled", decided_by="U0BOB", decided_at=NOW)), now=NOW, command=f"/dbops cancel {REQUEST_ID}"),
    **{name: (lambda reason=reason: render(approval_refused(reason), now=NOW, command=f"/dbops approve {REQUEST_ID}"))
       for reason, name in REFUSED_SAMPLES.items()},
    "approvals_list": lambda: render(approvals_list(), now=NOW, command="/dbops approvals"),
    "rollback_plan_clean": lambda: render(rollback_plan_clean(), now=NOW, command="/rollback production"),
    "rollback_plan_loss": lambda: render(dataclasses.replace(rollback_plan_clean(), options=(
        rollback_plan_clean().options[0], dataclasses.replace(restore_option(recommended=False), impact=Impact(
            before=State(version=V5, dirty=False), snapshot=PRE_MIGRATION, loss=LOSS)))), now=NOW,
        command="/rollback production"),
    "rollback_plan_dirty": lambda: render(rollback_plan_dirty(), now=NOW, command="/rollback production"),
    "rollback_plan_recover": lambda: render(rollback_plan_recover(), now=NOW, command="/rollback production"),
    "rollback_result_recover": lambda: render(rollback_result_recover(), now=NOW,
                                              command="/rollback --recover production"),
    "approval_request_recover": lambda: render(ApprovalNeeded(env="production", request=recover_request()), now=NOW,
                                               command="/rollback --recover production"),
    "status_dirty_recoverable": lambda: render(status_dirty_recoverable(), now=NOW,
                                               command="/migrate status production"),
    "status_no_version_matched": lambda: render(status_no_version_matched(), now=NOW,
                                                command="/migrate status production"),
    "status_no_version_closest": lambda: render(status_no_version_closest(), now=NOW,
                                                command="/migrate status production"),
    "baseline_done": lambda: render(baseline_result(), now=NOW, command=f"/migrate baseline {V3} production"),
    "baseline_refused": lambda: render(baseline_result(Outcome.REFUSED), now=NOW,
                                       command=f"/migrate baseline {V3} production"),
    "rollback_plan_missing_down": lambda: render(rollback_plan_missing_down(), now=NOW, command="/rollback production"),
    "rollback_result_done": lambda: render(rollback_result(), now=NOW,
                                           command='/rollback --steps 1 production --reason "event status broke"'),
    "rollback_result_orphans": lambda: render(rollback_result_orphans(), now=NOW,
                                              command='/rollback --steps 1 production --reason "event status broke"'),
}


# --- the application's pause and resume hooks around a restore and a rollback ---------------------------

HOOKS = HookPlan(pause="POST https://deploy.example.com/apps/togather/pause",
                 resume="POST https://deploy.example.com/apps/togather/resume?…",
                 health_url="https://togather.example.com/health", health_wait_seconds=120)
AWAITED = AppHealthCheck(url="https://togather.example.com/health", passed=True,
                         message="HTTP 200; migrations pass: Migrations applied successfully (version 20260128004)",
                         version=V4, dirty=False, waited_ms=6_200.0)


def hook_call(hook: str, status: int | None, message: str) -> HookCall:
    url = HOOKS.pause if hook == "pause" else HOOKS.resume
    return HookCall(hook=hook, method="POST", url=url.split(" ", 1)[1], done=status is not None and status < 300,
                    http_status=status, message=message, latency_ms=840.0)


def app_hooks(*, resumed: int | None = 200, **kw) -> AppHooks:
    resume = (hook_call("resume", resumed, "HTTP 200") if resumed == 200 else
              hook_call("resume", resumed, "HTTP 502: 'upstream scaler unavailable'"))
    fields = dict(plan=HOOKS, paused=hook_call("pause", 200, "HTTP 200"), resumed=resume, health=AWAITED)
    return AppHooks(**{**fields, **kw})


SAMPLES |= {
    "restore_app_hooks": lambda: render(dataclasses.replace(restore(), app_hooks=app_hooks()), now=NOW,
                                        command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "rollback_result_app_hooks": lambda: render(
        rollback_result(app_hooks=app_hooks(health=None), app_health=AWAITED), now=NOW,
        command='/rollback --steps 1 production --reason "event status broke"'),
    "rollback_result_app_not_resumed": lambda: render(
        rollback_result(app_hooks=app_hooks(resumed=502, health=None),
                        app_health=dataclasses.replace(AWAITED, passed=False, waited_ms=None, version=None, message=(
                            "Could not reach https://togather.example.com/health: [Errno 111] Connection refused"))),
        now=NOW, command='/rollback --steps 1 production --reason "event status broke"'),
    "refusal_app_not_paused": lambda: render(refusal(
        Reason.APP_NOT_PAUSED, operation="snapshot restore", app_hooks=app_hooks(
            paused=hook_call("pause", 503, "HTTP 503: 'deploy in progress, try again later'"), health=None)),
        now=NOW, command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "approval_request_restore_app_hooks": lambda: render(ApprovalNeeded(env="production", request=dataclasses.replace(
        restore_request(), impact=dataclasses.replace(restore_request().impact, app_hooks=HOOKS))), now=NOW,
        command=f"/snapshot restore {PRE_MIGRATION.name} production"),
    "rollback_plan_app_hooks": lambda: render(rollback_plan_hooked(), now=NOW, command="/rollback production"),
}


def rollback_plan_hooked() -> RollbackPlan:
    """The dirty plan with hooks: the restore and force-down run as /rollback (hooked); /migrate force does not."""
    plan = rollback_plan_dirty()
    return dataclasses.replace(plan, options=tuple(
        dataclasses.replace(o, impact=dataclasses.replace(o.impact, app_hooks=HOOKS))
        if o.command.startswith(("/rollback", "/snapshot")) or o.method == "restore" else o for o in plan.options))


def confirm_text(block: dict) -> str:
    return block["accessory"]["confirm"]["text"]["text"]


def test_rollback_options_say_which_choice_pauses_and_resumes_the_application_through_its_hooks() -> None:
    blocks = SAMPLES["rollback_plan_app_hooks"]().blocks
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*The application's hooks* (around each option that says so):\\n*The application is paused first:*" in text
    assert "`POST https://deploy.example.com/apps/togather/pause`" in text
    options = [b for b in blocks if b.get("accessory", {}).get("action_id") == "dbops_rollback_choose"]
    noted = ["Pauses the application first and resumes it after, through its hooks" in b["text"]["text"]
             for b in options]
    assert noted == [True, False, True]  # /migrate force (records a version, runs no SQL) is not wrapped in hooks
    dialog = confirm_text(options[0])
    assert len(dialog) <= 300  # the snapshot's long name is cut first, so the sentence about the application stays
    assert "is lost. dbops pauses the application first (its pause hook) and resumes it after. Next you give" in dialog
    unhooked = json.dumps(SAMPLES["rollback_plan_dirty"]().blocks, ensure_ascii=False)
    assert "hooks" not in unhooked and "pauses the application" not in unhooked


def test_the_approve_dialog_of_a_hooked_restore_says_the_application_is_paused_however_long_the_name() -> None:
    actions = SAMPLES["approval_request_restore_app_hooks"]().blocks[-1]
    dialog = actions["elements"][0]["confirm"]["text"]["text"]
    assert len(dialog) <= 300
    assert "dbops pauses the application first (its pause hook) and resumes it after. It runs at once" in dialog
    plain = SAMPLES["approval_request_restore"]().blocks[-1]["elements"][0]["confirm"]["text"]["text"]
    assert "pause" not in plain


# --- what every message must be ---------------------------------------------------------------------

_MENTION = re.compile(r"<(@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+|!subteam\^S[A-Z0-9]+)>")


def _texts(block: dict) -> list[str]:
    """Every mrkdwn/plain text in a block."""
    found = []
    if "text" in block:
        found.append(block["text"]["text"])
    found += [f["text"] for f in block.get("fields", ())]
    found += [e["text"] for e in block.get("elements", ()) if e.get("type") in ("mrkdwn", "plain_text")]
    return found


def assert_fits_slack(message: Message) -> None:
    assert isinstance(message.text, str) and 0 < len(message.text) <= 3000
    assert 0 < len(message.blocks) <= 50
    for block in message.blocks:
        Block.parse(block).validate_json()
        assert Block.parse(block).to_dict() == block, "a key slack_sdk does not know"
        kind = block["type"]
        if kind == "section":
            assert "text" in block or block.get("fields")
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", ())) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", ()))
        elif kind == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
        else:
            assert kind in ("divider", "actions")
        for text in _texts(block):
            assert text.strip()
    for text in [message.text] + [t for b in message.blocks if b["type"] != "header" for t in _texts(b)]:
        # the only markup in angle brackets is a mention or channel we wrote on purpose (Slack
        # does not parse a header's plain_text)
        assert "<" not in _MENTION.sub("", text) and ">" not in _MENTION.sub("", text), text
    for text in (t for b in message.blocks if b["type"] != "header" for t in _texts(b)):
        assert text.count("```") % 2 == 0, text
        assert text.replace("```", "").count("`") % 2 == 0, f"a code span is broken: {text}"


# --- golden files ---------------------------------------------------------------------------------------

def assert_matches_golden(name: str, message: Message) -> None:
    """A message of a capability's own sample table against both its golden files: the blocks
    (``GOLDEN/NAME.json``) and the same blocks as terminal text (``GOLDEN/terminal/NAME.txt``)."""
    from bot.cli.shell import message_text
    assert_fits_slack(message)
    rendered = json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    for path, text in ((GOLDEN / f"{name}.json", rendered), (GOLDEN / "terminal" / f"{name}.txt",
                                                             message_text(message) + "\n")):
        if os.environ.get("DBOPS_UPDATE_GOLDEN") == "1":
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden file {path.name}: run with DBOPS_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: rerun with DBOPS_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_reply_matches_its_golden_file(name: str) -> None:
    message = SAMPLES[name]()
    rendered = json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("DBOPS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with DBOPS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} changed: rerun with DBOPS_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_reply_is_block_kit_slack_accepts(name: str) -> None:
    message = SAMPLES[name]()
    assert_fits_slack(message)
    assert_fits_slack(with_refresh(attributed(message, user="U0ALICE", command="/migrate status"), "/migrate status"))


def test_every_result_and_reason_has_a_sample() -> None:
    from commands.kinds import Result
    kinds = {type(f()) for f in (status_clean, snapshot_list, migrate_done, dry_run, validate, snapshot_created,
                                 verify_failed, restore, pin, history, lambda: cleanup(dry_run=True), approval_needed,
                                 approval_decided, approvals_list, rollback_plan_clean, rollback_result,
                                 lambda: lock_status(held=True), lambda: lock_release(done=True), plan_result,
                                 doctor_result, drift_result, baseline_result, drill, preserved_list,
                                 lambda: ReimportResult(env="production", report=PRESERVED))}
    kinds |= {HelpResult, Refusal, ApprovalRefused, UnblockResult}  # UnblockResult: tests/test_blocks_lock_waits.py
    assert kinds == set(Result.__args__)
    assert {f"refusal_{r.value}" for r in Reason if r not in APPROVAL_REASONS} <= set(SAMPLES)
    assert set(REFUSED_SAMPLES) >= APPROVAL_REASONS and set(REFUSED_SAMPLES.values()) <= set(SAMPLES)


def test_every_result_kind_has_a_renderer() -> None:
    import importlib
    from commands.kinds import Result
    assert set(RENDERERS) == {kind.__name__ for kind in Result.__args__}
    for kind, (path, takes) in RENDERERS.items():
        module, _, name = path.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), kind
        assert set(takes) <= {"now", "command"}, kind


def test_a_result_of_no_known_kind_is_a_type_error_not_a_reply() -> None:
    @dataclasses.dataclass(frozen=True)
    class Stranger:
        audit_unwritten: str | None = None

    with pytest.raises(TypeError, match="no Slack renderer for Stranger"):
        render(Stranger(), now=NOW, command="/migrate status")


# --- outcomes an engineer reads first --------------------------------------------------------------------

def headline(message: Message) -> str:
    return message.blocks[0]["text"]["text"]


def test_state_changes_open_with_a_plain_headline() -> None:
    assert headline(SAMPLES["migrate_done"]()) == f"*production*: migrated up from {V3} to {V5}"
    assert headline(SAMPLES["migrate_failed_clean"]()) == \
        f"*production*: migration {V5} failed; the database is clean at version {V4}"
    assert headline(SAMPLES["migrate_failed_dirty"]()) == \
        f"*production*: migration {V4} failed and left the database dirty at version {V4}"
    for name in ("migrate_done", "migrate_failed_clean", "migrate_failed_dirty", "restore", "cleanup", "pin"):
        assert not re.search(r":[a-z_]+:", headline(SAMPLES[name]())), name


def test_a_dirty_failure_gives_the_guides_three_recovery_options_with_the_snapshot() -> None:
    text = json.dumps(SAMPLES["migrate_failed_dirty"]().blocks)
    assert "*Recovery options:*" in text
    assert all(f"  {n}. " not in text and f"{n}. " in text for n in (1, 2, 3))
    assert f"/snapshot restore {PRE_MIGRATION.name} production" in text
    assert "SQLSTATE 23505" in text and "Key (email)=(ana@example.com) is duplicated." in text


def test_wrong_channel_names_the_channel_or_says_none_is_configured() -> None:
    assert headline(SAMPLES["refusal_wrong_channel"]()) == \
        "`/migrate up` for *production* is only accepted in <#C0INCIDENT>"
    assert "no channel is configured for that environment" in json.dumps(SAMPLES["refusal_wrong_channel_none"]().blocks).lower()


def test_not_operator_lists_users_and_groups_as_mentions() -> None:
    text = json.dumps(SAMPLES["refusal_not_operator"]().blocks)
    assert "<@U0ALICE>, <!subteam^S0DBAS>" in text
    assert "only the operators may run state-changing commands" in text


def test_progress_shows_bytes_read_and_elapsed_time() -> None:
    assert SAMPLES["progress_snapshot"]().blocks[0]["text"]["text"] == (
        "⏳ <@U0ALICE> ran `/migrate up production` — taking a snapshot: 120.0 MB of 570.0 MB read, "
        "31.0 MB written, 0:42 elapsed")


def test_text_surface_words_the_new_refusals() -> None:
    def shown(result: Refusal) -> str:
        return result_text(result, command="migrate up production", now=NOW)
    assert "only accepted in #C0INCIDENT" in shown(refusal(Reason.WRONG_CHANNEL, allowed=("C0INCIDENT",)))
    assert "No channel is configured for that environment" in shown(refusal(Reason.WRONG_CHANNEL))
    assert "@U0ALICE, @S0DBAS" in shown(refusal(Reason.NOT_OPERATOR, allowed=("U0ALICE", "S0DBAS")))


# --- the two-person rule ------------------------------------------------------------------------------------

def test_request_card_has_approve_deny_and_cancel_buttons_carrying_the_request_id() -> None:
    actions = SAMPLES["approval_request_down"]().blocks[-1]
    assert actions["type"] == "actions"
    assert [(b["text"]["text"], b.get("style"), b["action_id"], b["value"]) for b in actions["elements"]] == [
        ("Approve", "primary", APPROVE_ACTION, REQUEST_ID), ("Deny", "danger", DENY_ACTION, REQUEST_ID),
        ("Cancel", None, CANCEL_ACTION, REQUEST_ID)]
    assert (APPROVE_ACTION, DENY_ACTION, CANCEL_ACTION) == ("dbops_approve", "dbops_deny", "dbops_cancel")


def test_request_card_says_who_asks_what_and_what_will_be_lost() -> None:
    message = SAMPLES["approval_request_down"]()
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert headline(message) == ("*production*: <@U0BOB> asks to run `/migrate down 2 production`: "
                                 "a second person must approve it")
    assert "in 12 minutes, at 16:42 UTC" in text and f"`{REQUEST_ID}`" in text
    assert f"`{V5}_{NAMES[V5]}.down.sql` line 1: drops column status of events" in text
    assert f"No down file: nothing is undone for version {V4}" in text
    restore_text = json.dumps(SAMPLES["approval_request_restore"]().blocks)
    assert "Everything written since 2026-01-28 15:45 UTC (45 minutes ago) will be lost." in restore_text


def test_deny_opens_a_modal_that_asks_for_the_reason() -> None:
    from slack_sdk.models.views import View
    view = deny_modal_view(request_id=REQUEST_ID, callback_id="dbops_deny_reason",
                           private_metadata=f"{REQUEST_ID}|C0INCIDENT|1769617800.000100")
    View(**view).validate_json()
    assert view["blocks"][-1]["block_id"] == "reason" and view["blocks"][-1]["element"]["action_id"] == "reason"
    assert view["submit"]["text"] == "Deny"


def test_a_decided_card_has_no_buttons() -> None:
    for state in ("executing", "executed", "failed", "denied", "cancelled", "expired", "void"):
        message = render_request_final(approved(state), now=NOW)
        assert_fits_slack(message)
        assert all(b["type"] != "actions" for b in message.blocks), state
    assert "running…" in headline(render_request_final(approved("executing"), now=NOW))


def test_approval_replies_stay_within_limits_and_cannot_ping_whatever_the_input() -> None:
    many = Impact(before=State(version=V5, dirty=False), target=0,
                  reverts=tuple(MigrationInfo(version=i, name=HOSTILE, has_up=True, has_down=False)
                                for i in range(2000)),
                  data_loss=tuple(LossyStatement(filename=HOSTILE * 5, line=i, description=HOSTILE * 20)
                                  for i in range(2000)), missing_down=tuple(range(2000)))
    hostile = request(command=HOSTILE * 40, impact=many, requester=HOSTILE, reason=HOSTILE * 100, decided_by=HOSTILE)
    cleanup_all = request(operation="cleanup", impact=Impact(before=State(version=1, dirty=False), deletes=tuple(
        snap(i, 1, HOSTILE) for i in range(5000)), delete_bytes=5000 * MB))
    long_result = render(dataclasses.replace(migrate_down(), steps=migrate_down().steps * 500), now=NOW, command="/x")
    messages = [render(ApprovalNeeded(env=HOSTILE, request=hostile), now=NOW, command="/x"),
                render(ApprovalNeeded(env="production", request=cleanup_all), now=NOW, command="/x"),
                render_request_final(dataclasses.replace(hostile, state="executed"), now=NOW,
                                     result_message=long_result),
                render(ApprovalDecided(env="production", request=approved(), result=migrate_down()), now=NOW,
                       command=HOSTILE),
                render(ApprovalsResult(env=HOSTILE, pending=(hostile,) * 300), now=NOW, command="/x")]
    messages += [render_request_final(dataclasses.replace(hostile, state=state), now=NOW)
                 for state in ("denied", "void", "failed", HOSTILE)]
    messages += [render(ApprovalRefused(env=HOSTILE, request_id=HOSTILE, reason=reason, request=hostile,
                                        detail=HOSTILE * 100), now=NOW, command="/x") for reason in Reason]
    for message in messages:
        assert_fits_slack(message)
        parsed = [b for b in message.blocks if b["type"] != "header"]  # Slack shows a header's text as it is
        assert "<!channel>" not in json.dumps(parsed) and "<!channel>" not in message.text
    assert "more" in json.dumps(messages[0].blocks) and "more" in json.dumps(messages[1].blocks)


def test_empty_approvals_list_says_nothing_waits() -> None:
    message = render(ApprovalsResult(env=None, pending=()), now=NOW, command="/dbops approvals")
    assert headline(message) == "No requests are waiting for approval."
    assert result_text(ApprovalsResult(env=None, pending=()), command="dbops approvals", now=NOW) == \
        "No requests are waiting for approval."


def test_both_surfaces_say_a_restore_of_another_environments_snapshot_needs_approval_here() -> None:
    needed = ApprovalNeeded(env="production", request=restore_request(source="staging"))
    command = f"snapshot restore {STAGING_SNAPSHOT} production"
    text = result_text(needed, command=command, now=NOW)
    assert "It is a snapshot of staging: the data of staging replaces the data of production." in text
    assert "always needs the approval of an approver of production" in text
    assert "It is a snapshot of staging" not in result_text(ApprovalNeeded(env="production", request=restore_request()),
                                                            command=command, now=NOW)
    assert "*It is a snapshot of staging*" in json.dumps(SAMPLES["approval_request_restore_from"]().blocks)


def test_text_surface_prints_the_request_id_and_the_impact() -> None:
    text = result_text(approval_needed(), command="migrate down 2 production", now=NOW)
    assert text.startswith("production: @U0BOB asks to run `dbops migrate down 2 production`: a second person must "
                           f"approve it\nRequest: `{REQUEST_ID}`\nExpires: in 12 minutes, at 16:42 UTC\n")
    assert f"other than @U0BOB must approve; only @U0BOB can cancel. Or type `dbops dbops approve {REQUEST_ID}`." in text
    assert f"Data that will be lost:\n⚠️ `{V5}_{NAMES[V5]}.down.sql` line 1: drops column status of events" in text
    assert f"No down file: nothing is undone for version {V4}" in text
    assert "will be lost" in result_text(ApprovalNeeded(env="production", request=restore_request()),
                                         command=f"snapshot restore {PRE_MIGRATION.name} production", now=NOW)
    for reason in APPROVAL_REASONS | SHARED_REASONS:
        refused = result_text(approval_refused(reason), command=f"dbops approve {REQUEST_ID}", now=NOW)
        assert f"request `{REQUEST_ID}`" in refused.lower(), reason
    decided = result_text(approval_decided(), command=f"dbops approve {REQUEST_ID}", now=NOW)
    assert decided.startswith(f"Approved by @U0ALICE: `dbops migrate down 2 production` (request `{REQUEST_ID}`")
    assert "migrated down from 20260128005 to 20260128003" in decided
    assert f"`{REQUEST_ID}` · production · `dbops migrate down 2 production`" in result_text(
        approvals_list(), command="dbops approvals", now=NOW)


# --- big and hostile inputs ---------------------------------------------------------------------------------

HOSTILE = "<!channel> `rm -rf` & <@U0EVE> ```x``` <#C0ALL> *bold* > done"


def test_a_page_of_ten_thousand_snapshots_shows_every_row_and_a_more_button_from_the_oldest_shown() -> None:
    page = tuple(snap(i, V3, f"nightly {i}") for i in range(30))
    result = SnapshotListResult(env="production", snapshots=page, orphans=(), incomplete=(), disk=DISK,
                                counted=10_000, complete=True, more=page[-1].name)
    message = render(result, now=NOW, command="/snapshot list")
    assert_fits_slack(message)
    assert message.blocks[0]["text"]["text"] == "production: newest 30 of 10,000 snapshots"
    shown = sum(b["text"]["text"].count("`production_") for b in message.blocks if b["type"] == "section")
    assert shown == 30
    buttons = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("More", f"/snapshot list production --before {page[-1].name}")]


def test_long_lists_stay_within_the_limits() -> None:
    pending = tuple(MigrationInfo(version=V5 + i, name="x" * 120, has_up=True, has_down=i % 2 == 0)
                    for i in range(300))
    status = StatusResult(env="production", state=State(version=V4, dirty=True), applied=(), pending=pending,
                          mismatch=None, missing_down=tuple(range(300)), skipped_files=tuple(f"{HOSTILE}{i}.txt"
                                                                                          for i in range(300)),
                          lock_holder=HOLDER)
    problems = tuple(FileProblem(filename=f"{i}_{HOSTILE}.up.sql", severity="error", message=HOSTILE * 40, line=i)
                     for i in range(500))
    entries = tuple(AuditEntry(at=NOW, actor="U0ALICE", channel="C0INCIDENT", surface="slack", environment="production",
                               command="snapshot create", arguments={"reason": HOSTILE * 10}, outcome="done",
                               detail=HOSTILE * 20, duration_ms=1.0) for _ in range(200))
    steps = tuple(StepReport(version=i, name=HOSTILE, direction="up", filename=f"{i}_{HOSTILE}.up.sql",
                             mode="transactional", duration_ms=1.0) for i in range(1000))
    for result in (status, ValidateResult(env="production", files_checked=500, problems=problems),
                   refusal(Reason.SYNTAX_ERROR, problems=problems), HistoryResult(env=None, entries=entries),
                   MigrateResult(env="production", operation="up", outcome=Outcome.DONE, before=State(version=0, dirty=False),
                                 after=State(version=999, dirty=False), steps=steps),
                   dataclasses.replace(cleanup(dry_run=False), deleted=tuple(snap(i, 1, HOSTILE) for i in range(5000)),
                                       kept=tuple((snap(i, 1, HOSTILE), HOSTILE) for i in range(5000)))):
        message = render(result, now=NOW, command="/x")
        assert_fits_slack(message)
        assert "more" in json.dumps(message.blocks)


def test_a_huge_postgresql_error_and_a_hostile_reason_cannot_ping_or_break_formatting() -> None:
    error = SqlError(message=HOSTILE + "e" * 10_000, sqlstate="XX000", detail=HOSTILE * 300, hint="<!here>" * 500,
                     context="`" * 3000, line=1)
    failed = MigrateResult(env="production", operation="up", outcome=Outcome.FAILED, before=State(version=1, dirty=False),
                           after=State(version=2, dirty=True), failure=StepFailure(
                               version=2, name=HOSTILE, direction="up", filename=f"2_{HOSTILE}.up.sql",
                               mode="no-transaction", error=error), snapshot=HOSTILE)
    created = SnapshotCreated(env="production", snapshot=snap(0, 1, HOSTILE * 20), sha256="0" * 64, database_size=1,
                              duration_ms=1)
    for message in (render(failed, now=NOW, command=HOSTILE), render(created, now=NOW, command=HOSTILE),
                    render_error(UsageError(HOSTILE * 200, usage=HOSTILE), command=HOSTILE * 100),
                    render_internal_error(command=HOSTILE, reference=HOSTILE),
                    render_progress(command=HOSTILE * 100, user=HOSTILE, progress=Progress(step="apply", detail=HOSTILE),
                                    elapsed_s=1e7),
                    attributed(render(created, now=NOW, command="/x"), user=HOSTILE, command=HOSTILE)):
        assert_fits_slack(message)
        assert "<!channel>" not in json.dumps(message.blocks) and "<!here>" not in message.text
        assert "&lt;!channel&gt;" in json.dumps(message.blocks)


_hostile_text = st.lists(st.sampled_from(list("<>&`*_~!@#:\n xé🚀") + ["<!channel>", "```", "&amp;", "<@U0EVE>"]),
                         max_size=1500).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reason=_hostile_text, message=_hostile_text, name=_hostile_text, env=_hostile_text,
       n=st.integers(min_value=0, max_value=400))
def test_any_text_and_any_length_stays_within_slacks_limits(reason: str, message: str, name: str, env: str,
                                                            n: int) -> None:
    snapshots = tuple(snap(i, i, reason, name=f"{name}{i}") for i in range(n))
    results = [
        SnapshotListResult(env=env, snapshots=snapshots, orphans=(name,) * n, incomplete=(name,), disk=DISK),
        DryRunResult(env=env, state=State(version=1, dirty=False), outcome=Outcome.FAILED, files=tuple(
            DryRunFile(version=i, name=name, filename=name, status="failed", note=reason,
                       error=SqlError(message=message, detail=reason, line=i)) for i in range(n))),
        refusal(Reason.LOCK_HELD, holder=LockHolder(pid=1, application_name=name, client=reason, user=message,
                                                    since=NOW, state=reason)),
        refusal(Reason.SNAPSHOT_DAMAGED, snapshot=name, checks=tuple(Check(name=name, passed=False, detail=message)
                                                                     for _ in range(n))),
        refusal(Reason.NOT_OPERATOR, allowed=(name, reason) * n),
        RestoreResult(env=env, name=name, mode=reason, safety_snapshot=name, before=State(version=1, dirty=False),
                      after=State(version=1, dirty=True), largest_tables=(TableRows(table=message, rows=n),) * 5,
                      kept_database=name, duration_ms=n),
    ]
    for result in results:
        assert_fits_slack(render(result, now=NOW, command=message))
    assert_fits_slack(render_error(SnapshotFailed(message, hint=reason), command=name))


def test_cutting_text_to_a_limit_never_splits_an_entity_a_mention_or_a_code_block() -> None:
    from bot.slack.blocks.kit import clip
    for filler in range(2980, 3000):
        for tail in ("&amp;" * 10, "<@U0ALICE>" * 5, "```" + "x" * 50, "`abc` `" + "y" * 50):
            cut = clip("x" * filler + tail, 3000)
            assert len(cut) <= 3000
            assert not re.search(r"&[a-z]*…", cut) and not re.search(r"<[^>]*…", cut), cut[-20:]
            assert cut.count("```") % 2 == 0 and cut.replace("```", "").count("`") % 2 == 0, cut[-20:]


# --- /rollback ---------------------------------------------------------------------------------------------

def test_rollback_plan_offers_each_available_option_with_a_choose_button_that_carries_its_command() -> None:
    message = SAMPLES["rollback_plan_dirty"]()
    options = [b for b in message.blocks if b["type"] == "section" and "accessory" in b]
    buttons = [(b["accessory"]["action_id"], b["accessory"]["value"], b["accessory"].get("style")) for b in options]
    assert buttons == [(CHOOSE_ACTION, f"/rollback --snapshot {PRE_MIGRATION.name} production", "primary"),
                       (CHOOSE_ACTION, f"/migrate force {V3} production", None),
                       (CHOOSE_ACTION, "/rollback --steps 1 production", None)]
    assert CHOOSE_ACTION == "dbops_rollback_choose"
    assert options[0]["text"]["text"].startswith(f"*1. Restore snapshot `{PRE_MIGRATION.name}`* · *Recommended*")
    assert "recorded as applied, then undone by its own down file" in options[2]["text"]["text"]
    assert message.blocks[0]["text"]["text"] == f"production: rollback options at version {V4} (dirty)"
    assert "Choosing asks for a reason, then a second person's approval." in json.dumps(message.blocks)


def test_rollback_plan_says_why_an_option_is_not_available_instead_of_offering_it() -> None:
    message = SAMPLES["rollback_plan_missing_down"]()
    unavailable = message.blocks[-2]
    assert "accessory" not in unavailable
    assert f"*Not available:* version {V4} has no down file" in unavailable["text"]["text"]
    clean = json.dumps(SAMPLES["rollback_plan_clean"]().blocks, ensure_ascii=False)
    assert f":warning: {LOSES_STATUS}" in clean and f":warning: {LOST_SINCE}" in clean
    assert "(45 minutes ago)" in clean


def test_rollback_plan_with_nothing_applied_says_there_is_nothing_to_roll_back() -> None:
    empty = RollbackPlan(env="production", state=State(version=-1, dirty=False), migration=None, options=())
    assert headline(render(empty, now=NOW, command="/rollback")) == \
        "*production*: Nothing to roll back: no migration is applied."
    assert result_text(empty, command="rollback production", now=NOW) == \
        "production: Nothing to roll back: no migration is applied."


def test_rollback_result_ticks_the_guides_checklist_from_what_happened() -> None:
    done = SAMPLES["rollback_result_done"]()
    assert headline(done) == (f"*production*: rolled back from {V5} to {V4} by the down file (reason: “event status "
                              "broke the &lt;!channel&gt; feed &amp; ˋsearchˋ”)")
    checklist = done.blocks[1]["text"]["text"]
    assert checklist.count("✅") == 6 and "❌" not in checklist
    assert "✅ *Approved by a second person:* <@U0ALICE> (requested by <@U0BOB>)" in checklist
    assert f"✅ *Version verified:* now at version {V4} (clean), as expected" in checklist
    assert "✅ *Integrity:* 12 foreign keys checked: no orphaned rows" in checklist
    assert {"type": "divider"} in done.blocks and headline(done) != done.blocks[-1]["text"]["text"]
    orphans = json.dumps(SAMPLES["rollback_result_orphans"]().blocks, ensure_ascii=False)
    assert "➖ *Second person's approval:* not required for this environment" in orphans
    assert "❌ *Health check FAILED:*" in orphans and "HTTP 503" in orphans
    assert "❌ *Integrity: 4 orphaned rows* in 2 of the 12 foreign keys checked" in orphans
    assert "`orders.user_id` → `users`: 3 rows" in orphans
    assert "☐ Roll the application back first" in orphans and "☐ Tell the team" in orphans


def test_a_rollback_that_missed_its_version_says_so_first() -> None:
    missed = rollback_result(after=State(version=V5, dirty=True), outcome=Outcome.FAILED, snapshots=(),
                             recorded=False, app_health=None, foreign_keys_checked=0)
    message = render(missed, now=NOW, command="/rollback --steps 1 production")
    assert headline(message) == f"*production*: rollback failed: expected version {V4}, found version {V5} (dirty)"
    checklist = message.blocks[1]["text"]["text"]
    assert f"❌ *Version NOT as expected:* expected version {V4}, found version {V5} (dirty)" in checklist
    assert "❌ *No snapshot was taken before the rollback*" in checklist
    assert "❌ *Reason not recorded*" in checklist
    assert "➖ *Health check:* no `health_url` configured" in checklist
    text = result_text(missed, command="rollback --steps 1 production", now=NOW)
    assert text.startswith(f"production: rollback failed: expected version {V4}, found version {V5} (dirty)")
    assert f"\n❌ Version NOT as expected: expected version {V4}, found version {V5} (dirty)\n" in text
    assert "\n➖ Health check: no `health_url` configured\n" in text


def test_text_surface_prints_the_rollback_plan_and_checklist() -> None:
    plan = result_text(rollback_plan_clean(), command="rollback production", now=NOW)
    assert plan.startswith(f"production: rollback options at version {V5} (clean)")
    assert f"\n1. Run the down file of `{V5}_{NAMES[V5]}` · Recommended\n" in plan
    assert "Runs `dbops rollback --steps 1 production --reason \"TEXT\"`" in plan
    assert f"⚠️ {LOSES_STATUS}" in plan
    missing_down = result_text(rollback_plan_missing_down(), command="rollback production", now=NOW)
    assert "\nNot available: version" in missing_down
    result = result_text(rollback_result_orphans(), command="rollback --steps 1 production", now=NOW)
    assert "\n✅ Version verified" in result and "\n➖ Second person's approval" in result
    assert "\n• `orders.user_id` → `users`: 3 rows (constraint `orders_user_id_fkey`)" in result
    assert "\n☐ Tell the team in the incident channel / status page" in result
    assert "\n" + "-" * 40 + "\nproduction: migrated down from" in result  # what ran, under the checklist


def test_rollback_replies_stay_within_limits_and_cannot_ping_whatever_the_input() -> None:
    orphans = tuple(OrphanCount(constraint=HOSTILE, table=HOSTILE, columns=(HOSTILE,) * 3, references=HOSTILE, rows=i)
                    for i in range(3000))
    hostile = rollback_result(env=HOSTILE, reason=HOSTILE * 100, requester=HOSTILE, approved_by=HOSTILE,
                              snapshots=(HOSTILE * 30,) * 20, orphans=orphans, deployment_state=HOSTILE * 20,
                              app_health=AppHealthCheck(url=HOSTILE * 20, passed=False, message=HOSTILE * 200),
                              step=dataclasses.replace(migrate_down(), steps=migrate_down().steps * 500),
                              outcome=Outcome.FAILED)
    option = RollbackOption(method=HOSTILE, command=HOSTILE * 100, recommended=True, available=True,
                            warnings=(HOSTILE * 100,) * 30, impact=DOWN_IMPACT)
    plans = [RollbackPlan(env=HOSTILE, state=State(version=V5, dirty=True), migration=None, options=(option,) * 60),
             RollbackPlan(env=HOSTILE, state=State(version=V5, dirty=False),
                          migration=MigrationInfo(version=V5, name=HOSTILE * 20, has_up=True, has_down=True),
                          options=tuple(dataclasses.replace(o, command=HOSTILE) for o in rollback_plan_dirty().options))]
    for result in [hostile, *plans]:
        message = render(result, now=NOW, command=HOSTILE)
        assert_fits_slack(message)
        assert_fits_slack(with_refresh(attributed(message, user="U0ALICE", command="/rollback"), "/rollback"))
        shown = [t for b in message.blocks if b["type"] != "header" for t in _texts(b)]  # a button's value is data
        assert "<!channel>" not in json.dumps(shown) and "<!channel>" not in message.text
    assert "more" in json.dumps(render(hostile, now=NOW, command="/x").blocks)


def test_choosing_a_rollback_opens_a_modal_that_asks_for_the_reason() -> None:
    from slack_sdk.models.views import View
    from bot.slack.blocks.rollback import reason_modal_view
    view = reason_modal_view(command="/rollback --steps 1 production", callback_id="dbops_rollback_reason",
                             private_metadata="C0INCIDENT|/rollback --steps 1 production")
    View(**view).validate_json()
    assert view["blocks"][-1]["block_id"] == "reason" and view["blocks"][-1]["element"]["action_id"] == "reason"
    assert "`/rollback --steps 1 production`" in view["blocks"][0]["text"]["text"]
