"""Block Kit rendering of Results, faults and progress: all of the Slack surface's wording.

Pure functions, no I/O and no clock: ``now`` is passed in. Each returns a ``Message`` (the
notification text and the blocks) that is within Slack's limits whatever the input
(``bot.slack.blocks.kit`` enforces them); migrations and snapshots have their own modules,
``bot.slack.blocks.migrate`` and ``bot.slack.blocks.snapshots``. State-changing outcomes open with a
plain headline ("*production*: migrated up from 3 to 5"); details follow.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from bot.slack.blocks import migrate as migrate_blocks
from bot.slack.blocks.kit import (
    REFRESH_ACTION, Card, Message, bold, channel_ref, clock_text, code, count, duration_text, either, esc, esc_citing, extended, mrkdwn,
    plain, principal_ref, shorten, user_ref, when,
)
from bot.slack.blocks.migrate import holder_line, lock_advice, mismatch_section, problem_row, recovery_dirty
from bot.slack.blocks.wording import at_version
from commands.errors import (
    CommandError, ConfigError, DatabaseError, PrivilegeError, SnapshotFailed, SourceError, UsageError,
    VersionTableError,
)
from commands.results import HelpResult, HistoryResult, OperationRecord, Progress, Reason, Refusal, Shortfall, State
from commands.units import human_size

if TYPE_CHECKING:
    from commands.approval.results import ApprovalDecided
    from commands.kinds import Result
    from commands.migrate.results import UnblockResult
    from commands.rollback.results import RollbackResult

__all__ = ["REFRESH_ACTION", "Message", "attributed", "render", "render_error", "render_internal_error",
           "render_interrupted", "render_progress", "with_refresh"]

BUTTON_VALUE_CHARS = 2000
HISTORY_SHOWN = 25


def render(result: Result, *, now: datetime, command: str) -> Message:
    """``result`` as a Slack reply; ``command`` is what the user typed (``/migrate up 2 staging``).
    A result whose audit record could not be written says so last."""
    message = _render(result, now=now, command=command)
    if not result.audit_unwritten:
        return message
    note = f"⚠️ The audit record could not be written ({result.audit_unwritten})."
    return extended(Message(text=f"{message.text} {note}", blocks=message.blocks),
                    {"type": "context", "elements": [mrkdwn(esc(shorten(note, 1000)))]})


def _render(result: Result, *, now: datetime, command: str) -> Message:
    kind = type(result).__name__
    if kind not in RENDERERS:
        raise TypeError(f"no Slack renderer for {kind}")
    path, takes = RENDERERS[kind]
    given = {"now": now, "command": command}
    return _use(path)(result, *(given[name] for name in takes))


# Each kind of result's renderer, by the kind's name: "module:function" and what it takes after the
# result. Imported when first used, so a status from the shell loads the migration cards and not
# every capability's (bench/cli_startup.py). Every kind in commands.kinds.Result has one (a test
# keeps it so).
RENDERERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "StatusResult": ("bot.slack.blocks.migrate:status", ("now",)),
    "MigrateResult": ("bot.slack.blocks.migrate:migrate", ("command",)),
    "DryRunResult": ("bot.slack.blocks.migrate:dry_run", ()),
    "ValidateResult": ("bot.slack.blocks.migrate:validate", ()),
    "PlanResult": ("bot.slack.blocks.plan:plan", ()),
    "DriftResult": ("bot.slack.blocks.drift:drift", ()),
    "BaselineResult": ("bot.slack.blocks.schema_version:baseline", ()),
    "SnapshotListResult": ("bot.slack.blocks.snapshots:snapshot_list", ("now",)),
    "SnapshotCreated": ("bot.slack.blocks.snapshots:created", ()),
    "SnapshotVerifyResult": ("bot.slack.blocks.snapshots:verified", ()),
    "RestoreResult": ("bot.slack.blocks.snapshots:restored", ()),
    "DrillResult": ("bot.slack.blocks.drills:drilled", ()),
    "PinResult": ("bot.slack.blocks.snapshots:pinned", ()),
    "CleanupResult": ("bot.slack.blocks.snapshots:cleanup", ("now",)),
    "Refusal": ("bot.slack.blocks.render:_refusal", ("now",)),
    "HistoryResult": ("bot.slack.blocks.render:_history", ()),
    "HelpResult": ("bot.slack.blocks.render:_help", ()),
    "ApprovalNeeded": ("bot.slack.blocks.approvals:needed", ("now",)),
    "ApprovalRefused": ("bot.slack.blocks.approvals:refused", ("now",)),
    "ApprovalDecided": ("bot.slack.blocks.render:_decided", ("now", "command")),
    "ApprovalsResult": ("bot.slack.blocks.approvals:pending_list", ("now",)),
    "RollbackPlan": ("bot.slack.blocks.rollback:plan", ("now",)),
    "RollbackResult": ("bot.slack.blocks.render:_rolled_back", ("now", "command")),
    "LockStatusResult": ("bot.slack.blocks.locks:lock_status", ("now",)),
    "LockReleaseResult": ("bot.slack.blocks.locks:lock_release", ()),
    "DoctorResult": ("bot.slack.blocks.doctor:doctor", ()),
    "UnblockResult": ("bot.slack.blocks.render:_unblocked", ("now",)),
    "PreservedListResult": ("bot.slack.blocks.preserve:preserved_list", ("now",)),
    "ReimportResult": ("bot.slack.blocks.preserve:reimported", ()),
}


def _use(path: str) -> Callable[..., Message]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _decided(r: ApprovalDecided, now: datetime, command: str) -> Message:
    """An approval's answer, with the reply of the command it ran (if it ran one) inside."""
    from bot.slack.blocks.approvals import decided
    return decided(r, now, render(r.result, now=now, command=command) if r.result is not None else None)


def _unblocked(r: UnblockResult, now: datetime) -> Message:
    """An unblock, with the reply of the up it retried (if it ran one) below."""
    from bot.slack.blocks.lock_waits import unblock
    return unblock(r, render(r.retry, now=now, command=f"/migrate up {r.env}") if r.retry is not None else None)


def _rolled_back(r: RollbackResult, now: datetime, command: str) -> Message:
    """A rollback, with the reply of the down, goto or restore it came down to inside."""
    from bot.slack.blocks.rollback import result
    return result(r, render(r.step, now=now, command=command))


# --- refusals --------------------------------------------------------------------------------

def _slash(operation: str) -> str:
    """An operation as the user would type it: "up" -> "/migrate up", "snapshot pin" -> "/snapshot pin"."""
    first = operation.split(" ", 1)[0]
    return f"/{operation}" if first in ("migrate", "snapshot", "dbops", "rollback") else f"/migrate {operation}"


def _refused(r: Refusal, why: str) -> Card:
    headline = f"{bold(r.env)}: {code(_slash(r.operation))} refused: {why}"
    return Card(plain(headline)).section(headline)


def _refusal(r: Refusal, now: datetime) -> Message:
    op, env = code(_slash(r.operation)), r.env
    if r.reason is Reason.BLOCKED:
        from bot.slack.blocks.lock_waits import refused_blocked  # with its buttons
        return refused_blocked(_refused(r, "sessions hold locks its statements need"), r)
    match r.reason:
        case Reason.LOCK_HELD if r.lock_dir is not None:
            card = _refused(r, "a deploy script holds its lock directory")
            since = f", taken {when(r.lock_dir.locked_at)}" if r.lock_dir.locked_at else ""
            owner = f" by pid {r.lock_dir.pid}" if r.lock_dir.pid else ""
            card.section(f"{code(r.lock_dir.path)} exists{owner}{since}: a deploy is migrating (or crashed "
                         "holding it). Nothing was changed.\nWait for it; if it died, `/dbops lock status` says "
                         "whether it is stale and `/dbops lock release` takes it away.")
        case Reason.LOCK_HELD:
            card = _refused(r, "the migration lock is held")
            card.section(f"Held by {holder_line(r.holder, now)}. Nothing was changed.\n{lock_advice(r.holder)}")
        case Reason.DIRTY:
            state = r.state or State(version=-1, dirty=True)
            card = _refused(r, f"the database is dirty at {at_version(state.version)}")
            card.section("Nothing was changed.\n" + recovery_dirty(state, env))
        case Reason.VERSION_MISMATCH:
            card = _refused(r, "the database's version is not one the migration files have")
            card.section((mismatch_section(r.mismatch) + "\n" if r.mismatch else "") + "Nothing was changed.")
        case Reason.SYNTAX_ERROR:
            card = _refused(r, f"{count(len(r.problems), 'migration file')} {'does' if len(r.problems) == 1 else 'do'} "
                               "not parse, so nothing was run")
            card.lines([problem_row(p) for p in r.problems[:migrate_blocks.ROWS_SHOWN]], total=len(r.problems),
                       more=migrate_blocks.json_hint("migrate validate", env))
        case Reason.SNAPSHOT_DAMAGED:
            card = _refused(r, f"snapshot {code(r.snapshot or '?')} failed verification")
            card.section("It was not restored. Nothing was changed.")
            from bot.slack.blocks.snapshots import check_rows
            card.lines(check_rows(r.checks))
            card.context(f"Pick another one: {code(f'/snapshot list {env}')}.")
        case Reason.NO_SNAPSHOT_DIR:
            card = _refused(r, "no place for snapshots is configured")
            card.section(f"Set `snapshot_dir` (a directory) or `snapshot_url` (`s3://BUCKET/PREFIX`) under "
                         f"{code(f'[environments.{env}]')} in the dbops configuration.")
        case Reason.WRONG_CHANNEL:
            if r.allowed:
                headline = f"{op} for {bold(env)} is only accepted in {either([channel_ref(c) for c in r.allowed])}"
                detail = "Nothing was changed. Run it there."
            else:
                headline = f"{op} for {bold(env)} is not accepted in any channel"
                detail = (f"No channel is configured for that environment: set `channels` under "
                          f"{code(f'[environments.{env}]')} in the dbops configuration. Nothing was changed.")
            card = Card(plain(headline)).section(headline).section(detail)
        case Reason.CONTROL_UNREACHABLE:
            card = _refused(r, "dbops' control database cannot be reached")
            card.section("Every change dbops makes is recorded there (the audit log, approvals), so it makes none "
                         "without it. Nothing was changed.\nRead-only commands (`/migrate status`, `/snapshot list`, "
                         "`/dbops lock status` …) still answer; try this again when the control database is back.")
            card.context(esc(shorten(r.detail or "", 1000)))
        case Reason.NOT_OPERATOR:
            live = " (a dry run runs its SQL on the live database)" if r.operation == "migrate dry-run" else ""
            card = _refused(r, f"only the operators may run state-changing commands{live}")
            who = ", ".join(principal_ref(p) for p in r.allowed) or "nobody is configured"
            card.section(f"Operators of {bold(env)}: {who}. Ask one of them to run it. Nothing was changed.")
        case Reason.OTHER_ENVIRONMENT | Reason.UNCLAIMED_SNAPSHOT | Reason.MANIFEST_MISMATCH:
            card = _refused(r, f"snapshot {code(r.snapshot or '?')} does not belong to {bold(env)}")
            from bot.slack.blocks.snapshots import not_own
            card.section(not_own(r) + " Nothing was changed.")
        case Reason.MISSING_PRIVILEGE if r.shortfall is not None:
            card = _shortfall(r, r.shortfall)
        case Reason.EDITED_APPLIED_FILE:
            card = _refused(r, "an applied migration file was edited after it ran")
            from bot.slack.blocks.files import refusal_section
            refusal_section(card, r.files, env)
        case Reason.APP_NOT_PAUSED:
            card = _refused(r, "the application's pause hook did not answer 2xx")
            from bot.slack.blocks.app_hooks import refusal_text
            card.section(refusal_text(r.app_hooks))
        case Reason.NO_APPROVALS:
            card = _refused(r, "it needs a second person's approval, and no control database can keep the request")
            card.section(f"Set `database_url` under `[control]` in the dbops configuration, or take the operation out "
                         f"of `require_approval` under {code(f'[environments.{env}]')}. Nothing was changed.")
        case _:
            card = _refused(r, esc(r.reason.value))
    return card.message()


def _shortfall(r: Refusal, s: Shortfall) -> Card:
    card = _refused(r, f"database role {code(s.role)} lacks what it needs")
    card.section("Nothing was changed: the role's privileges were checked before any snapshot or SQL.")
    card.lines([f"• {esc(m.what)}: {code(m.fix)}" for m in s.missing], title="*Missing, and what gives it:*")
    if s.setting is not None:
        where = code(f"[environments.{r.env}]")
        if s.setting_needs:
            card.lines([f"• {esc(m.what)}: {code(m.fix)}" for m in s.setting_needs],
                       title=f"*Or* set {code(s.setting)} under {where}, which needs:")
        else:
            card.section(f"*Or* set {code(s.setting)} under {where}: role {code(s.role)} can do that.")
    card.context(f"Grant as a superuser or the service's admin role. {code(f'/dbops doctor {r.env}')} checks every "
                 "privilege dbops needs.")
    return card


# --- history and help --------------------------------------------------------------------------

_OUTCOMES = {"done": "done", "no_change": "no change", "refused": "*refused*", "failed": "*FAILED*",
             "error": "*error*"}


def _history(r: HistoryResult) -> Message:
    scope = r.env or "all environments"
    if not r.entries and not r.files:
        title = f"No history yet for {scope}"
        return Card(esc(title)).header(title).section("(Or no control database is configured.)").message()
    title = f"History: {scope}, latest {count(len(r.entries), 'command')}"
    rows = []
    for e in r.entries[:HISTORY_SHOWN]:
        args = " ".join(f"{k}={v}" for k, v in e.arguments.items() if v not in (None, False))
        where = f" in {channel_ref(e.channel)}" if e.channel else f" ({esc(e.surface)})"
        rows.append(f"{when(e.at)} · {user_ref(e.actor)}{where} · {code(f'{e.command} {args}'.strip())}"
                    + (f" on {bold(e.environment)}" if e.environment else "")
                    + f" → {_OUTCOMES.get(e.outcome, esc(e.outcome))} · {duration_text(e.duration_ms)}"
                    + (f"\n        {esc(shorten(e.detail, 300))}" if e.detail else ""))
    card = Card(esc(title)).header(title)
    more = migrate_blocks.json_hint("dbops history", r.env) if r.env else f"use {code('dbops dbops history --format json')}"
    card.lines(rows, total=len(r.entries), title="*Newest first:*", more=more)
    if r.files:
        from bot.slack.blocks.files import history_row
        card.lines([history_row(f) for f in r.files[:HISTORY_SHOWN]], total=len(r.files),
                   title="*Migration files applied and reverted, newest first:*", more=more)
    return card.message()


def _help(r: HelpResult) -> Message:
    card = Card("dbops commands").header("dbops commands")
    card.lines([code(slash(u)) for u in r.usage])
    return card.context("ENV may be left out in a channel that belongs to one environment. In a shell, type "
                        "`dbops` instead of the slash; `--format json` gives JSON.").message()


def slash(line: str) -> str:
    """A usage line (``commands.usage``: no surface's syntax) as Slack types it."""
    return "/" + line


# --- faults ----------------------------------------------------------------------------------------

_FAULTS: tuple[tuple[type[CommandError], str], ...] = (
    (UsageError, "could not be run"),
    (ConfigError, "failed: the dbops configuration has a problem"),
    (SourceError, "failed: the migrations directory cannot be used as golang-migrate would use it"),
    (PrivilegeError, "failed: the database role lacks a privilege"),
    (DatabaseError, "failed: PostgreSQL could not be reached or returned an error"),
    (VersionTableError, "failed: schema_migrations is not as golang-migrate leaves it"),
    (SnapshotFailed, "failed: the snapshot did not work, so nothing was changed"),
)


def render_error(err: CommandError, *, command: str) -> Message:
    """A fault (usage, configuration, database, a failed snapshot …) in the user's words."""
    what = next((text for kind, text in _FAULTS if isinstance(err, kind)), "failed")
    headline = f"{code(command)} {what}"
    card = Card(plain(headline) + ": " + esc(shorten(err.message, 1000))).section(headline)
    card.section(esc_citing(shorten(err.message, 2500)))
    if isinstance(err, UsageError):
        if err.usage:
            card.section(f"Usage: {' or '.join(code(slash(line)) for line in err.usage)}")
        if "dbops help" not in (err.usage or ()):
            card.context("`/dbops help` lists every command.")
    elif err.hint:
        card.context(esc(shorten(err.hint, 1000)))
    if isinstance(err, SnapshotFailed):
        card.context("Check the snapshot directory's free space "
                     "(`/snapshot cleanup` frees it), its permissions, and that the database can be reached.")
    return card.message()


def render_internal_error(*, command: str, reference: str) -> Message:
    """A bug: said plainly, with the reference that finds its traceback in the log."""
    headline = f"{code(command)} failed because of a bug in dbops, not because of anything you did"
    card = Card(plain(headline) + f" (reference {esc(reference)})").section(headline)
    card.section(f"The details are in the dbops log under reference {code(reference)}: pass it on to whoever "
                 "looks after dbops.\nIf the command changes the database, check `/migrate status` before trying "
                 "again: it may have stopped part-way.")
    return card.message()


# --- while it runs, and after ------------------------------------------------------------------------

_STEPS = {"start": "starting", "lock": "waiting for the migration lock", "snapshot": "taking a snapshot",
          "verify": "verifying the snapshot", "apply": "applying", "restore": "restoring",
          "read-back": "reading the restored database back", "build": "building the expected schema of version",
          "unblock": "signalling pid", "lock-wait": "waiting for a lock another session holds",
          "blockers": "waiting for sessions in its way to finish"}


def _doing(p: Progress | None) -> str:
    if p is None:
        return _STEPS["start"]
    doing = _STEPS.get(p.step, esc(p.step))
    if p.step in ("lock-wait", "blockers") and p.lock_wait is not None:
        from bot.slack.blocks.lock_waits import waiting_text  # only while a migration waits for a lock
        return (f"{_STEPS['apply']} {code(p.detail)}: " if p.detail else "") + waiting_text(p.lock_wait)
    if p.step == "snapshot" and p.read_bytes is not None:
        of = f" of {human_size(p.total_bytes)}" if p.total_bytes else ""
        written = f", {human_size(p.written_bytes)} written" if p.written_bytes else ""
        return f"{doing}: {human_size(p.read_bytes)}{of} read{written}"
    return f"{doing} {code(p.detail)}" if p.detail else doing


def render_progress(*, command: str, user: str, progress: Progress | None, elapsed_s: float) -> Message:
    """The message a long operation shows while it runs; the result replaces it."""
    text = f"⏳ {user_ref(user)} ran {code(command)} — {_doing(progress)}, {clock_text(elapsed_s)} elapsed"
    if progress is not None and progress.statement is not None:  # what the server says of a long statement
        from bot.slack.blocks.statements import statement_progress_text
        text += "\n" + statement_progress_text(progress.statement)
    return Card(plain(text)).section(text).message()


def render_interrupted(record: OperationRecord) -> Message:
    """An operation whose process stopped mid-way: said once, in its thread; never retried."""
    env = f"{bold(record.environment)}: " if record.environment else ""
    headline = f"{env}{code(record.command)} was interrupted and will not be retried"
    step = _STEPS.get(record.step or "start", esc(record.step))
    status = f"/migrate status {record.environment}" if record.environment else "/migrate status"
    card = Card(plain(headline)).section(headline)
    card.section(f"The dbops process running it stopped while {step} (last heard from {when(record.heartbeat_at)}). "
                 f"{user_ref(record.actor)} started it at {when(record.started_at)}.\n"
                 f"Check {code(status)} before anything else: a migration file that cannot run in a transaction "
                 "and was cut off leaves the database dirty. A restore cut off part-way left the database as it was.")
    return card.message()


def attributed(message: Message, *, user: str, command: str) -> Message:
    """``message`` with a last line saying who ran what, for replies shown in the channel."""
    line = {"type": "context", "elements": [mrkdwn(f"{user_ref(user)} ran {code(command)}")]}
    return extended(message, line)


def with_refresh(message: Message, command: str) -> Message:
    """``message`` with a Refresh button that runs ``command`` again (a read-only one)."""
    if len(command) > BUTTON_VALUE_CHARS:
        return message
    button = {"type": "button", "action_id": REFRESH_ACTION, "value": command,
              "text": {"type": "plain_text", "text": "Refresh"}}
    return extended(message, {"type": "actions", "elements": [button]})
