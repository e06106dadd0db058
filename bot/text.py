"""Plain-text rendering of Results for terminals: all the CLI's wording lives here."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from bot import text_doctor, text_locks, text_plan, text_rollback, text_shell, text_snapshots
from commands.lint.findings import blocking_first
from commands.approval.results import (ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalRequest,
                                       ApprovalsResult)
from commands.snapshot.results import (CleanupResult, DiskUsage, PinResult, RestoreResult, SnapshotCreated,
                                       SnapshotInfo, SnapshotListResult, SnapshotVerifyResult)
from commands.doctor.results import DoctorResult
from commands.migrate.results import DryRunResult, MigrateResult, StatusResult, ValidateResult
from commands.results import (HelpResult, HistoryResult, LockHolder, Mismatch, Reason, Refusal, Shortfall,
                              SqlError, State)
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.lint.results import PlanResult
from commands.kinds import Result
from commands.rollback.results import RollbackPlan, RollbackResult
from commands.units import human_size, used_percent
from bot.slack.blocks.wording import (
    span_text, plural, until_text, age_text, disk_text, at_version, version_text, holder_text, RECOVERY_DIRTY, mismatch_text, sql_error_lines,
)


def _status(r: StatusResult) -> list[str]:
    lines = [f"Environment {r.env}: {version_text(r.state)}"]
    lines.append(f"Applied: {len(r.applied)}   Pending: {len(r.pending)}")
    for m in r.pending[:20]:
        lines.append(f"  pending  {m.version}_{m.name}" + ("" if m.has_down else "   (no down file)"))
    if len(r.pending) > 20:
        lines.append(f"  … and {len(r.pending) - 20} more pending")
    if r.state.dirty:
        lines += [line.format(v=r.state.version) for line in RECOVERY_DIRTY]
    if r.mismatch:
        lines += mismatch_text(r.mismatch)
    if r.missing_down:
        shown = ", ".join(str(v) for v in r.missing_down[:10]) + (" …" if len(r.missing_down) > 10 else "")
        lines.append(f"No down file (rollback through these is a no-op): {shown}")
    if r.skipped_files:
        lines.append(f"Skipped files (not migrations): {len(r.skipped_files)}")
    if r.lock_holder:
        lines.append(f"Migration lock held by {holder_text(r.lock_holder)}")
    return lines


def _refusal(r: Refusal) -> list[str]:
    head = f"Refused: {r.operation} on {r.env}"
    match r.reason:
        case Reason.LOCK_HELD if r.lock_dir is not None:
            since = f", taken {r.lock_dir.locked_at:%Y-%m-%d %H:%M:%S} UTC" if r.lock_dir.locked_at else ""
            owner = f" by pid {r.lock_dir.pid}" if r.lock_dir.pid else ""
            return [f"{head}: the deploy lock directory {r.lock_dir.path} exists{owner}{since}.",
                    "A deploy script is migrating (or crashed holding it). Nothing was changed.",
                    "Wait for the deploy; if it died, `dbops lock status` says whether the lock is stale and "
                    "`dbops lock release` takes it away."]
        case Reason.LOCK_HELD:
            return [f"{head}: the migration lock is held by {holder_text(r.holder)}.",
                    "Another migration (a deploy script's `migrate`, or another dbops) is running. Nothing was changed.",
                    "Wait for it to finish: two migrations must never run at once."]
        case Reason.DIRTY:
            return [f"{head}: the database is at {version_text(r.state)}. Nothing was changed."] + \
                   [line.format(v=r.state.version) for line in RECOVERY_DIRTY]
        case Reason.VERSION_MISMATCH:
            return [f"{head}. Nothing was changed."] + mismatch_text(r.mismatch)
        case Reason.SNAPSHOT_DAMAGED:
            return [f"{head}: snapshot {r.snapshot} failed verification, so it was not restored. Nothing was changed."] + [
                f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in r.checks] + [
                "Pick another snapshot (`dbops snapshot list`)."]
        case Reason.NO_SNAPSHOT_DIR:
            return [f"{head}: no snapshot_dir is configured for {r.env}."]
        case Reason.SYNTAX_ERROR:
            return [f"{head}: a migration file does not parse, so nothing was run."] + [
                f"  {p.filename}, line {p.line}, column {p.column}: {p.message}" for p in r.problems]
        case Reason.CONTROL_UNREACHABLE:
            return [f"{head}: dbops' control database cannot be reached ({r.detail}).",
                    "Every change dbops makes is recorded there (the audit log, approvals), so it makes none without "
                    "it. Nothing was changed; read-only commands still answer."]
        case Reason.WRONG_CHANNEL:
            if not r.allowed:
                return [(f"{head}: no channel is configured for {r.env}, so it takes no commands from a channel "
                         f"(set `channels` under [environments.{r.env}]).")]
            return [f"{head}: {r.env} takes commands only in channel {' or '.join(r.allowed)}. Nothing was changed."]
        case Reason.NOT_OPERATOR:
            return [(f"{head}: only the operators of {r.env} may run state-changing commands: "
                     f"{', '.join(r.allowed)}. Nothing was changed.")]
        case Reason.OTHER_ENVIRONMENT | Reason.UNCLAIMED_SNAPSHOT | Reason.MANIFEST_MISMATCH:
            return [f"{head}: snapshot {r.snapshot} does not belong to {r.env}. Nothing was changed.",
                    text_snapshots.not_own(r)]
        case Reason.MISSING_PRIVILEGE if r.shortfall is not None:
            return _shortfall(head, r.env, r.shortfall)
        case Reason.NO_APPROVALS:
            return [f"{head}: it needs a second person's approval, and no control database is configured to keep "
                    "the request in. Nothing was changed.",
                    f"Set database_url under [control] in the dbops configuration, or take the operation out of "
                    f"require_approval under [environments.{r.env}]."]
    return [f"{head}: {r.reason.value}"]


def _shortfall(head: str, env: str, s: Shortfall) -> list[str]:
    lines = [f"{head}: database role {s.role} lacks what it needs. Nothing was changed (checked before any "
             "snapshot or SQL).", "Missing, and what gives it:"]
    lines += [f"  {m.what}: {m.fix}" for m in s.missing]
    if s.setting is not None and s.setting_needs:
        lines.append(f"Or set {s.setting} under [environments.{env}], which needs:")
        lines += [f"  {m.what}: {m.fix}" for m in s.setting_needs]
    elif s.setting is not None:
        lines.append(f"Or set {s.setting} under [environments.{env}]: role {s.role} can do that.")
    lines.append(f"Grant as a superuser or the service's admin role; `dbops doctor {env}` checks every privilege "
                 "dbops needs.")
    return lines



def _migrate(r: MigrateResult) -> list[str]:
    if r.operation == "force":
        if r.outcome.value == "no_change":
            return [f"{r.env}: already at {version_text(r.after)}; nothing changed."]
        return [f"{r.env}: forced from {version_text(r.before)} to {version_text(r.after)}.",
                "No migration ran: the schema itself was not changed."] + (
                    [f"  snapshot taken first: {r.snapshot}"] if r.snapshot else [])
    if r.outcome.value == "no_change":
        return [f"{r.env}: no change; the database is at {version_text(r.after)}."]
    lines = []
    for s in r.steps:
        lines.append(f"  {s.direction:<4} {s.version}_{s.name}  {s.duration_ms:.0f} ms"
                     + ("  (no file: no-op)" if s.filename is None else "")
                     + (f"  [{s.mode}]" if s.mode != "transactional" else ""))
    if r.snapshot:
        lines.insert(0, f"  snapshot taken first: {r.snapshot}")
    if r.failure is None:
        return [f"{r.env}: {r.operation} done, {len(r.steps)} migration(s) in {r.duration_ms:.0f} ms; "
                f"now at {version_text(r.after)}."] + lines
    f = r.failure
    lines = [f"{r.env}: {r.operation} FAILED at {f.version}_{f.name} ({f.direction}); "
             f"now at {version_text(r.after)}."] + lines
    lines.append(f"  FAILED {f.direction} {f.version}_{f.name}:")
    lines += sql_error_lines(f.error, f.filename)
    if r.after.dirty:
        lines.append(f"This file could not run in a transaction ({f.mode}), so it may be half applied.")
        lines += [line.format(v=r.after.version) for line in RECOVERY_DIRTY]
    else:
        lines.append(f"The failing file was rolled back with its transaction: the database is at "
                     f"{version_text(r.after)}. Fix the file and run `up` again.")
    return lines


def _dry_run(r: DryRunResult) -> list[str]:
    if not r.files:
        return [f"{r.env}: nothing pending at {version_text(r.state)}; nothing to try."]
    unchecked = sum(f.status in ("partial", "skipped") for f in r.files)
    if r.outcome.value == "failed":
        verdict = "would FAIL"
    elif unchecked:
        verdict = (f"would succeed for the {len(r.files) - unchecked} it ran; {unchecked} not checked "
                   "(statements that cannot run in a transaction were not run)")
    else:
        verdict = "would succeed"
    lines = [f"{r.env}: dry run of {len(r.files)} migration(s) from {version_text(r.state)}: {verdict}. "
             "Rolled back, except sequence values it took (nextval, setval, serial or identity inserts), which "
             "stay advanced; statements that cannot run in a transaction were not tried."]
    for f in r.files:
        status = {"partial": "partly checked", "skipped": "not checked", "not_run": "not run"}.get(f.status, f.status)
        lines.append(f"  {status:<7} {f.version}_{f.name}" + (f"  ({f.note})" if f.note else ""))
        if f.error:
            lines += ["  " + line for line in sql_error_lines(f.error, f.filename)]
    return lines


def _validate(r: ValidateResult) -> list[str]:
    errors = [p for p in r.problems if p.severity == "error"]
    lines = [f"{r.env}: {r.files_checked} migration file(s) checked: {len(errors)} error(s), "
             f"{len(r.problems) - len(errors)} warning(s)."]
    for p in r.problems:
        where = p.filename + (f", line {p.line}" if p.line else "") + (f", column {p.column}" if p.column else "")
        lines.append(f"  {p.severity:<7} {where}: {p.message}")
    return lines


def _snapshot_row(s: SnapshotInfo, now: datetime) -> str:
    flags = ("  [pinned]" if s.pinned else "") + ("  [legacy]" if s.kind == "legacy" else "") + (
        "  [dirty]" if s.dirty else "")
    return (f"  {s.name}\n    {s.created_at:%Y-%m-%d %H:%M:%S} UTC ({age_text(now - s.created_at)}), "
            f"{human_size(s.size)}, {at_version(s.version)}, reason: {s.reason}{flags}")


def _snapshot_list(r: SnapshotListResult, now: datetime) -> list[str]:
    if not r.snapshots:
        lines = [f"{r.env}: no snapshots yet."]
    else:
        lines = [f"{r.env}: {len(r.snapshots)} snapshot(s), newest first:"]
        lines += [_snapshot_row(s, now) for s in r.snapshots[:50]]
        if len(r.snapshots) > 50:
            lines.append(f"  … and {len(r.snapshots) - 50} older (--format json lists all)")
    lines.append(disk_text(r.disk))
    if r.orphans:
        lines.append(f"Sidecar files without their snapshot (not listed): {', '.join(r.orphans[:5])}"
                     + (" …" if len(r.orphans) > 5 else ""))
    if r.incomplete:
        lines.append(f"Unfinished snapshot files (an interrupted run; removed at the next create): {len(r.incomplete)}")
    return lines


def _cleanup(r: CleanupResult, now: datetime) -> list[str]:
    verb = "would delete" if r.dry_run else "deleted"
    head = (f"{r.env}: cleanup{' (dry run: nothing was deleted)' if r.dry_run else ''}: {verb} {len(r.deleted)} "
            f"snapshot(s), {'would free' if r.dry_run else 'freed'} {human_size(r.freed_bytes)} "
            f"(retention {plural(r.retention_days, 'day')}, keep the newest {r.keep_last}).")
    lines = [head] + [f"  {verb} {s.name} ({human_size(s.size)}, {age_text(now - s.created_at)})" for s in r.deleted]
    lines += [f"  kept    {s.name} ({why})" for s, why in r.kept]
    lines.append(f"Before: {disk_text(r.disk_before)}")
    if not r.dry_run:
        lines.append(f"After:  {disk_text(r.disk_after)}")
    return lines


def _restore(r: RestoreResult) -> list[str]:
    lines = [f"{r.env}: restored {r.name} ({r.mode}) in {r.duration_ms / 1000:.1f} s.",
             f"  safety snapshot of the state before: {r.safety_snapshot or '(off for this environment)'}",
             f"  version before: {version_text(r.before)}; after: {version_text(r.after)}"]
    if r.kept_database:
        lines.append(f"  the replaced database is kept as {r.kept_database} (drop it when no longer needed)")
    if r.largest_tables:
        lines.append("  largest tables: " + ", ".join(f"{t.table} {plural(t.rows, 'row')}" for t in r.largest_tables))
    if r.after.dirty:
        lines.append("The snapshot itself was taken in a dirty state: see `migrate status` for the recovery options.")
    return lines


def _history(r: HistoryResult, now: datetime) -> list[str]:
    scope = f"{r.env}" if r.env else "all environments"
    if not r.entries:
        return [f"No history yet for {scope} (or no control database configured)."]
    lines = [f"Latest {len(r.entries)} command(s), {scope}, newest first:"]
    for e in r.entries:
        args = " ".join(f"{k}={v}" for k, v in e.arguments.items() if v not in (None, False))
        where = f" in {e.channel}" if e.channel else ""
        lines.append(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.actor} ({e.surface}{where}) {e.environment or '-'}: {e.command}"
                     f"{' ' + args if args else ''} -> {e.outcome} ({e.duration_ms:.0f} ms)"
                     + (f": {e.detail}" if e.detail else ""))
    return lines


# --- the two-person rule ----------------------------------------------------------------------

LISTED = 50


def _listed(rows: list[str]) -> list[str]:
    return rows[:LISTED] + ([f"    … and {len(rows) - LISTED} more"] if len(rows) > LISTED else [])


def _impact(r: ApprovalRequest, now: datetime) -> list[str]:
    i = r.impact
    if r.operation == "force":
        return [f"  Sets the recorded version to {i.target} (now {version_text(i.before)}). No SQL runs: "
                "the schema is not changed."]
    if i.reverts:
        return ([f"  Reverts {len(i.reverts)} migration(s), to {at_version(i.target)}, in this order:"]
                + _listed([f"    {m.version}_{m.name}" for m in i.reverts])
                + _listed([f"  LOSES DATA: {s.filename} line {s.line}: {s.description}" for s in i.data_loss])
                + _listed([f"  No down file: nothing is undone for version {v}" for v in i.missing_down]))
    if i.applies:
        trying = r.operation == "dry-run"
        head = (f"  Tries {len(i.applies)} migration(s), to {at_version(i.target)}, on the live database, then rolls "
                "back; sequence values it takes stay advanced. In this order:" if trying else
                f"  Applies {len(i.applies)} migration(s), to {at_version(i.target)}, in this order:")
        stopping, rest = blocking_first(i.findings, i.block_severity)
        return ([head] + _listed([f"    {m.version}_{m.name}" for m in i.applies])
                + text_plan.why_approval(stopping, "approval is needed")
                + ([f"  {'Other lint' if stopping else 'Lint'} findings (migrate plan):"] if rest else [])
                + _listed([text_plan.finding_line(f) for f in rest]))
    if i.snapshot is not None:
        s = i.snapshot
        return [f"  Restores snapshot {s.name}, taken {s.created_at:%Y-%m-%d %H:%M} UTC.",
                f"  Everything written since {s.created_at:%Y-%m-%d %H:%M} UTC ({age_text(now - s.created_at)}) "
                "will be lost."] + ([f"  It is a snapshot of {i.restore_from}: the data of {i.restore_from} replaces "
                                     f"the data of {r.env}. Restoring another environment's snapshot (restore_from) "
                                     f"always needs the approval of an approver of {r.env}."] if i.restore_from else [])
    if i.deletes:
        return ([f"  Deletes {len(i.deletes)} snapshot(s), {human_size(i.delete_bytes)}:"]
                + _listed([f"    {s.name} ({human_size(s.size)}, {age_text(now - s.created_at)})" for s in i.deletes]))
    return ["  At the state it was requested against, it changes nothing."]


def _request_state(r: ApprovalRequest) -> str:
    by = f"{r.decided_by or 'someone'}" + (f" at {r.decided_at:%H:%M} UTC" if r.decided_at else "")
    return {"pending": "waiting for approval", "executing": f"approved by {by} and running",
            "executed": f"approved by {by} and run", "failed": f"approved by {by}; it failed"
            + (f": {r.reason}" if r.reason else ""),
            "denied": f"denied by {by}" + (f": {r.reason}" if r.reason else ""),
            "cancelled": f"cancelled by {by}", "expired": f"expired at {r.expires_at:%Y-%m-%d %H:%M} UTC",
            "void": "void: the database changed since it was requested" + (f" ({r.reason})" if r.reason else ""),
            }.get(r.state, r.state)


def _approval_needed(r: ApprovalRequest, now: datetime) -> list[str]:
    return [f"Approval needed: request {r.id} ({r.command}) waits for a second person. Approve it in Slack or "
            f"with `dbops dbops approve {r.id}` as someone else. It expires at {r.expires_at:%Y-%m-%d %H:%M} UTC "
            f"(in {until_text(r.expires_at - now)}).",
            f"  The database is at {version_text(r.impact.before)}."] + _impact(r, now)


def _approval_refused(r: ApprovalRefused) -> list[str]:
    req = r.request
    what = f"request {r.request_id}" + (f" ({req.command})" if req else "")
    head = f"Refused: {what}"
    match r.reason:
        case Reason.SELF_APPROVAL:
            return [f"{head}: you asked for it; someone else among the approvers of {r.env} must approve it."]
        case Reason.NOT_APPROVER:
            return [f"{head}: you are not one of the approvers of {r.env}."]
        case Reason.UNMAPPED_SHELL_USER:
            return [f"{head}: you are the operating-system account {r.detail}, which [cli] users does not map to a "
                    "Slack user id, and an unmapped account can never approve or deny.",
                    f'  To answer as yourself, add "{r.detail}" = "U…" (your Slack user id, one of the approvers of '
                    f"{r.env}) under [cli] users in the configuration."]
        case Reason.EXPIRED:
            return [f"{head}: it expired" + (f" at {req.expires_at:%Y-%m-%d %H:%M} UTC" if req else "")
                    + "; nothing was changed. Ask again."]
        case Reason.DECIDED:
            return [f"{head}: it was already decided: {_request_state(req) if req else 'no longer pending'}."]
        case Reason.STATE_CHANGED:
            return [f"{head}: the request is void: the database is not as it was when it was requested"
                    + (f" ({r.detail})" if r.detail else "") + ". Nothing was run; make a new one."]
        case Reason.NOT_REQUESTER:
            return [f"{head}: only {req.requester if req else 'whoever asked for it'} can cancel it."]
        case Reason.UNKNOWN_REQUEST:
            return [f"{head}: there is no such request" + (f" ({r.detail})" if r.detail else "")
                    + ". `dbops dbops approvals` lists the ones waiting."]
        case Reason.WRONG_CHANNEL:
            return [f"{head}: {r.env} does not take commands from this channel; answer it in its own channel."]
        case Reason.CONTROL_UNREACHABLE:
            return [f"{head}: dbops' control database, where requests are kept, cannot be reached ({r.detail}). "
                    "Nothing was changed."]
    return [f"{head}: {r.reason.value}"]


def unmapped_note(account: str) -> str:
    """Said under a refusal that depends on who a shell user is, when [cli] users does not map them."""
    return (f"You are os:{account}: [cli] users in the configuration does not map the account {account} to a "
            f'Slack user id. Add "{account}" = "U…" there to act as yourself.')


def _approval_decided(r: ApprovalDecided, now: datetime) -> list[str]:
    q = r.request
    if r.result is not None:
        return [f"Approved by {q.decided_by}: request {q.id} ({q.command}), asked by {q.requester}."] + \
            render_text(r.result, now=now).splitlines()
    return [f"Request {q.id} ({q.command}): {_request_state(q)}. Nothing was changed."]


def _approvals(r: ApprovalsResult, now: datetime) -> list[str]:
    scope = f" for {r.env}" if r.env else ""
    if not r.pending:
        return [f"No requests are waiting for approval{scope}."]
    return [f"{len(r.pending)} request(s) waiting for approval{scope}, oldest first:"] + _listed([
        f"  {q.id}  {q.env}: {q.command}  asked by {q.requester} {age_text(now - q.created_at)}, "
        f"expires in {until_text(q.expires_at - now)}" for q in r.pending])


def render_text(result: Result, *, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    match result:
        case SnapshotListResult():
            lines = _snapshot_list(result, now)
        case SnapshotCreated(snapshot=s):
            lines = [f"{result.env}: snapshot {s.name} created in {result.duration_ms / 1000:.1f} s: "
                     f"{human_size(s.size)} (database {human_size(result.database_size)}), sha256 {result.sha256[:16]}…"]
        case SnapshotVerifyResult():
            verdict = "verified" if result.outcome.value == "done" else "FAILED verification"
            lines = [f"{result.env}: snapshot {result.name} {verdict}."] + [
                f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in result.checks]
        case RestoreResult():
            lines = _restore(result)
        case PinResult():
            state = "pinned (cleanup will never delete it)" if result.pinned else "unpinned"
            lines = [f"{result.env}: {result.name} {'is already' if result.outcome.value == 'no_change' else 'is now'} {state}."]
        case CleanupResult():
            lines = _cleanup(result, now)
        case HelpResult():
            lines = ["dbops commands:"] + [f"  {text_shell.shell(u)}" for u in result.usage]
        case HistoryResult():
            lines = _history(result, now)
        case StatusResult():
            lines = _status(result)
        case Refusal():
            lines = _refusal(result)
        case MigrateResult():
            lines = _migrate(result)
        case DryRunResult():
            lines = _dry_run(result)
        case ValidateResult():
            lines = _validate(result)
        case PlanResult():
            lines = text_plan.plan_lines(result)
        case ApprovalNeeded():
            lines = _approval_needed(result.request, now)
        case ApprovalRefused():
            lines = _approval_refused(result)
        case ApprovalDecided():
            lines = _approval_decided(result, now)
        case ApprovalsResult():
            lines = _approvals(result, now)
        case RollbackPlan():
            lines = text_rollback.plan_lines(result, now)
        case RollbackResult():
            lines = text_rollback.result_lines(result, render_text(result.step, now=now))
        case LockStatusResult():
            lines = text_locks.lock_status(result, now)
        case LockReleaseResult():
            lines = text_locks.lock_release(result)
        case DoctorResult():
            lines = text_doctor.doctor_lines(result)
        case _:
            raise TypeError(f"no text renderer for {type(result).__name__}")
    if result.audit_unwritten:
        lines.append(f"Note: the audit record could not be written ({result.audit_unwritten}).")
    return "\n".join(lines)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """``value`` (a Result, or anything in one) as JSON-ready data; a dataclass gets its ``kind``."""
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(value):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        data = {"kind": cls.__name__}
        for name in names:
            data[name] = plain(getattr(value, name))
        return data
    if value is None or cls in (str, int, float, bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def render_json(result: Result) -> str:
    """One line of JSON, for scripts and `jq` (indenting costs 30 ms on a 10,000-snapshot list)."""
    return json.dumps(plain(result))
