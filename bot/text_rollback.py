"""Plain-text wording for ``/rollback``: the plan, and the guide's checklist after a rollback.

The fixed sentences (the methods' names, the reminders for people) are shared with
``bot.slack.blocks.rollback``, which lays the same content out for Slack.
"""

from __future__ import annotations

from datetime import datetime

# ``bot.text`` imports this module for its dispatch, so its helpers are reached through the
# module at call time rather than imported by name while it is still loading.
from bot import text
from bot.text_shell import shell, shell_words
from commands.rollback.results import AppHealthCheck, OrphanCount, RollbackOption, RollbackPlan, RollbackResult
from commands.migrate.results import MigrateResult, MigrationInfo
from commands.results import Outcome, State

CHOOSING = "Choosing asks for a reason, then a second person's approval."
APP_FIRST = "Roll the application back first (or confirm the running version works with the old schema)."
NOTHING_APPLIED = "Nothing to roll back: no migration is applied."
REMINDERS = (
    "Roll the application back first (or confirm the running version works with the old schema)",
    "Tell the team in the incident channel / status page",
    "Test critical functionality by hand and watch the application's logs for error spikes",
)
METHOD_NOTES = {  # how each method works, in one line that needs no other document
    "down": "golang-migrate's down: the file written to undo this migration",
    "goto": "golang-migrate's goto: each migration's down file, newest first",
    "restore": "The whole database goes back to the snapshot",
    "force-previous": "golang-migrate's force: only the recorded version changes, not the schema",
    "force-down": "For a migration that failed part-way: recorded as applied, then undone by its own down file",
}
ORPHANS_LISTED = 50


def number(version: int | None) -> str:
    return "?" if version is None else ("no version" if version < 0 else str(version))


def migration_label(m: MigrationInfo | None, state: State) -> str:
    return f"{m.version}_{m.name}" if m is not None else text.at_version(state.version)


def orphan_columns(o: OrphanCount) -> str:
    """``orders.user_id``, or ``orders (a, b)`` for a key of several columns."""
    columns = ", ".join(o.columns)
    return f"{o.table}.{columns}" if len(o.columns) == 1 else f"{o.table} ({columns})"


def rows_text(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def orphan_text(o: OrphanCount) -> str:
    """``orders.user_id → users: 3 rows``: the guide's integrity query, one foreign key."""
    return f"{orphan_columns(o)} → {o.references}: {rows_text(o.rows)}"


def health_text(h: AppHealthCheck) -> str:
    reports = ""
    if h.version is not None:
        reports = f"; it reports migrations at {text.at_version(h.version)}" + (
            "" if h.dirty is None else f" ({'dirty' if h.dirty else 'clean'})")
    return f"{h.message}{reports}"


def method_words(r: RollbackResult) -> str:
    """How the rollback was done, after "rolled back from 8 to 7 by"."""
    steps = len(r.step.steps) if isinstance(r.step, MigrateResult) else 1
    return {"down": "the down file" if steps == 1 else "the down files", "goto": "goto (the down files)",
            "restore": "restoring a snapshot", "force-down": "force, then the down file",
            "force-previous": "force"}.get(r.method, r.method)


def version_verified(r: RollbackResult) -> tuple[bool, str]:
    """Whether the database is where the rollback should have left it, and what was found."""
    found = text.version_text(r.after)
    if r.expected_version is None:
        return False, f"now at {found}: the rollback did not reach a target version"
    if r.after.version == r.expected_version and not r.after.dirty:
        return True, f"now at {found}, as expected"
    return False, f"expected {text.at_version(r.expected_version)}, found {found}"


def failure_words(r: RollbackResult) -> str:
    """Why a rollback failed, after "Rollback failed: "."""
    verified, found = version_verified(r)
    if r.step.outcome is Outcome.FAILED:
        failure = r.step.failure if isinstance(r.step, MigrateResult) else None
        what = f"{failure.direction} of {failure.version}_{failure.name} failed" if failure else f"{r.method} failed"
        return f"{what}; now at {text.version_text(r.after)}"
    return found if not verified else f"{r.method} did not finish; now at {text.version_text(r.after)}"


# --- the plan ------------------------------------------------------------------------------------

def option_title(o: RollbackOption, plan: RollbackPlan) -> str:
    """What choosing ``o`` does, in plain words (names unformatted: each surface formats them)."""
    i, v = o.impact, plan.state.version
    match o.method:
        case "down":
            return f"Run the down file of {migration_label(plan.migration, plan.state)}"
        case "restore":
            return f"Restore snapshot {i.snapshot.name}" if i and i.snapshot else \
                f"Restore the snapshot taken before {text.at_version(v)}"
        case "force-previous":
            target = i.target if i and i.target is not None else None
            return (f"Record {text.at_version(target)} as clean without running any SQL" if target is not None
                    else "Record the previous version as clean without running any SQL")
        case "force-down":
            return f"Force {number(v)} clean, then run its down file"
    return o.method


def _impact_lines(o: RollbackOption, now: datetime) -> list[str]:
    i = o.impact
    if i is None:
        return []
    lines = []
    if i.reverts:
        lines.append(f"Reverts {', '.join(f'{m.version}_{m.name}' for m in i.reverts)}, leaving "
                     f"{text.at_version(i.target)}.")
    elif i.snapshot is not None:
        s = i.snapshot
        lines.append(f"Taken {s.created_at:%Y-%m-%d %H:%M} UTC ({text.age_text(now - s.created_at)}), at "
                     f"{text.at_version(s.version)}" + (" (dirty)" if s.dirty else "") + ".")
    elif o.method == "force-previous" and i.target is not None:
        lines.append(f"Sets the recorded version to {number(i.target)}; the schema is not changed.")
    lines += [f"No down file for {v}: nothing is undone for it." for v in i.missing_down]
    return lines


def shell_command(command: str) -> str:
    """An option's slash command as a shell types it; a rollback itself needs its reason."""
    typed = shell(command)
    return typed + ' --reason "TEXT"' if typed.startswith("dbops rollback ") else typed


def plan_lines(r: RollbackPlan, now: datetime) -> list[str]:
    if not r.options:
        return [f"{r.env}: {NOTHING_APPLIED}"]
    lines = [f"{r.env}: rollback options at {text.version_text(r.state)}",
             f"  Undoing: {migration_label(r.migration, r.state)}"
             + ("" if r.migration is not None else " (no migration file has this version)")]
    if r.state.dirty:
        lines.append(f"  Migration {number(r.state.version)} failed part-way: its changes may be half applied.")
    for n, o in enumerate(r.options, 1):
        lines.append(f"  {n}. {option_title(o, r)}" + ("  [Recommended]" if o.recommended else "")
                     + f"  ({METHOD_NOTES.get(o.method, o.method)})")
        lines += [f"       {line}" for line in _impact_lines(o, now)]
        lines += [f"       ⚠ {shell_words(w)}" for w in o.warnings]
        lines.append(f"       run: {shell_command(o.command)}" if o.available else
                     f"       not available: {shell_words(o.why_not or 'not offered for this state')}")
    return lines + [f"Where {r.env} requires a second person, running one makes an approval request. {APP_FIRST}"]


# --- after the rollback ----------------------------------------------------------------------------

def checklist(r: RollbackResult) -> list[tuple[bool | None, str]]:
    """The guide's checklist as dbops can tick it: (True done, False not done, None not applicable)."""
    items: list[tuple[bool | None, str]] = []
    items.append((True, f"Snapshot taken before the rollback: {', '.join(r.snapshots)}") if r.snapshots else
                 (False, "No snapshot was taken before the rollback (safety snapshots are off for this environment)"))
    where = ("in the rollback log" + (f" and in {r.deployment_state}" if r.deployment_state else "")) if r.recorded \
        else ("NOT in the rollback log (no control database, or writing failed: see the dbops log)"
              + (f"; written to {r.deployment_state}" if r.deployment_state else ""))
    items.append((r.recorded, f"Reason recorded: \"{r.reason}\", {where}"))
    items.append((True, f"Approved by a second person: {r.approved_by} (requested by {r.requester})")
                 if r.approved_by else
                 (None, f"Second person's approval: not required for this environment (run by {r.requester})"))
    verified, found = version_verified(r)
    items.append((verified, f"Version verified: {found}"))
    h = r.app_health
    items.append((None, "Health check: no health_url configured") if h is None else
                 (h.passed, f"Health check {'passed' if h.passed else 'FAILED'} ({h.url}): {health_text(h)}"))
    fks = f"{r.foreign_keys_checked:,} foreign key{'' if r.foreign_keys_checked == 1 else 's'} checked"
    if r.orphans:
        rows = sum(o.rows for o in r.orphans)
        items.append((False, f"Integrity: {fks}: {rows:,} orphaned row{'' if rows == 1 else 's'} in "
                             f"{len(r.orphans)} of them"))
    elif r.foreign_keys_checked:
        items.append((True, f"Integrity: {fks}: no orphaned rows"))
    else:
        items.append((None, "Integrity: the database has no foreign keys to check"))
    return items


def headline(r: RollbackResult) -> str:
    """The first line, reason not included (each surface quotes it its own way)."""
    if r.outcome is Outcome.FAILED:
        return f"rollback failed: {failure_words(r)}"
    if r.outcome is Outcome.NO_CHANGE:
        return f"nothing was rolled back; the database is at {text.version_text(r.after)}"
    return f"rolled back from {number(r.before.version)} to {number(r.after.version)} by {method_words(r)}"


_MARKS = {True: "[x]", False: "[ ]", None: "[-]"}


def result_lines(r: RollbackResult, step_text: str) -> list[str]:
    """``step_text``: the underlying down/goto/restore's own rendering, shown under the checklist."""
    lines = [f"{r.env}: {headline(r)} (reason: \"{r.reason}\")", "Rollback checklist:"]
    lines += [f"  {_MARKS[done]} {item}" for done, item in checklist(r)]
    lines += [f"        {orphan_text(o)} (constraint {o.constraint})" for o in r.orphans[:ORPHANS_LISTED]]
    if len(r.orphans) > ORPHANS_LISTED:
        lines.append(f"        … and {len(r.orphans) - ORPHANS_LISTED} more (--format json lists all)")
    lines += ["For people (dbops cannot tick these):"] + [f"  [ ] {item}" for item in REMINDERS]
    return lines + ["What ran:"] + [f"  {line}" for line in step_text.splitlines()]
