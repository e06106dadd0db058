"""Slack wording for ``/rollback``: the options posted during an incident, and the checklist after.

The plan card has one section per option, best first, each with a Choose button
(``CHOOSE_ACTION``, its value the command the option runs, e.g. ``/rollback --steps 1
production``; a restore's asks for Slack's confirmation first); the listener asks for a
reason (``reason_modal_view``) and runs it with that, which becomes an approval request where
the environment requires a second person. The result card ticks the guide's rollback
checklist from what actually happened and carries the underlying down/goto/restore's own
reply under it. The terminal shows these same cards (``bot.terminal``).
"""

from __future__ import annotations

from datetime import datetime

from bot.slack.blocks.app_hooks import checklist as hooks_checklist, option_note, options_text, waited, with_hooks
from bot.slack.blocks.approvals import reason_modal
from bot.slack.blocks.kit import (
    BODY_BLOCKS, CONFIRM_TEXT_CHARS, ELLIPSIS, Card, Message, bold, code, confirm_dialog, count, esc, esc_citing,
    mrkdwn, plain, shorten, user_ref, when,
)
from bot.slack.blocks.drills import estimate_text
from bot.slack.blocks.migrate import snapshot_version
from bot.slack.blocks.wording import TICKS, age_text, at_version, number, version_text
from commands.rollback.results import AppHealthCheck, OrphanCount, RollbackOption, RollbackPlan, RollbackResult
from commands.migrate.results import MigrateResult, MigrationInfo
from commands.results import Outcome, State

__all__ = ["CHOOSE_ACTION", "plan", "reason_modal_view", "result"]

CHOOSE_ACTION = "dbops_rollback_choose"
BUTTON_VALUE_CHARS = 2000
REASON_CHARS = 500
WARNING_CHARS = 500
ORPHANS_SHOWN = 20

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
    "recover": "What the failed file left that holds no data is dropped, then the previous version is forced",
}


# --- plain phrases -------------------------------------------------------------------------------

def migration_label(m: MigrationInfo | None, state: State) -> str:
    return f"{m.version}_{m.name}" if m is not None else at_version(state.version)


def orphan_columns(o: OrphanCount) -> str:
    """``orders.user_id``, or ``orders (a, b)`` for a key of several columns."""
    columns = ", ".join(o.columns)
    return f"{o.table}.{columns}" if len(o.columns) == 1 else f"{o.table} ({columns})"


def rows_text(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def health_text(h: AppHealthCheck) -> str:
    reports = ""
    if h.version is not None:
        reports = f"; it reports migrations at {at_version(h.version)}" + (
            "" if h.dirty is None else f" ({'dirty' if h.dirty else 'clean'})")
    return f"{h.message}{reports}"


def method_words(r: RollbackResult) -> str:
    """How the rollback was done, after "rolled back from 8 to 7 by"."""
    steps = len(r.step.steps) if isinstance(r.step, MigrateResult) else 1
    return {"down": "the down file" if steps == 1 else "the down files", "goto": "goto (the down files)",
            "restore": "restoring a snapshot", "force-down": "force, then the down file",
            "force-previous": "force", "recover": "removing the failed migration's leftovers, then force"
            }.get(r.method, r.method)


def version_verified(r: RollbackResult) -> tuple[bool, str]:
    """Whether the database is where the rollback should have left it, and what was found."""
    found = version_text(r.after)
    if r.expected_version is None:
        return False, f"now at {found}: the rollback did not reach a target version"
    if r.after.version == r.expected_version and not r.after.dirty:
        return True, f"now at {found}, as expected"
    return False, f"expected {at_version(r.expected_version)}, found {found}"


def failure_words(r: RollbackResult) -> str:
    """Why a rollback failed, after "rollback failed: "."""
    verified, found = version_verified(r)
    if r.step.outcome is Outcome.FAILED:
        failure = r.step.failure if isinstance(r.step, MigrateResult) else None
        what = f"{failure.direction} of {failure.version}_{failure.name} failed" if failure else f"{r.method} failed"
        return f"{what}; now at {version_text(r.after)}"
    return found if not verified else f"{r.method} did not finish; now at {version_text(r.after)}"


def option_title(o: RollbackOption, plan: RollbackPlan) -> str:
    """What choosing ``o`` does, in plain words (names unformatted)."""
    i, v = o.impact, plan.state.version
    match o.method:
        case "down":
            return f"Run the down file of {migration_label(plan.migration, plan.state)}"
        case "restore":
            return f"Restore snapshot {i.snapshot.name}" if i and i.snapshot else \
                f"Restore the snapshot taken before {at_version(v)}"
        case "force-previous":
            target = i.target if i and i.target is not None else None
            return (f"Record {at_version(target)} as clean without running any SQL" if target is not None
                    else "Record the previous version as clean without running any SQL")
        case "force-down":
            return f"Force {number(v)} clean, then run its down file"
        case "recover":
            target = i.target if i and i.target is not None else None
            return (f"Remove what {number(v)} left behind and force {number(target)}" if i and i.drops
                    else f"Force {number(target)}: migration {number(v)} left nothing behind")
    return o.method


# --- the plan ------------------------------------------------------------------------------------

def _title(o: RollbackOption, r: RollbackPlan) -> str:
    """The option's title with its names as code spans."""
    i = o.impact
    if o.method == "down":
        return f"Run the down file of {code(migration_label(r.migration, r.state))}"
    if o.method == "restore" and i is not None and i.snapshot is not None:
        return f"Restore snapshot {code(i.snapshot.name)}"
    return esc(option_title(o, r))


def _impact(o: RollbackOption, now: datetime) -> list[str]:
    i = o.impact
    if i is None:
        return []
    lines = []
    if i.reverts:
        reverted = ", ".join(code(f"{m.version}_{m.name}") for m in i.reverts[:10])
        more = f" and {len(i.reverts) - 10:,} more" if len(i.reverts) > 10 else ""
        lines.append(f"Reverts {reverted}{more}, leaving {at_version(i.target)}.")
    elif i.snapshot is not None:
        s = i.snapshot
        lines.append(f"Taken {when(s.created_at)} ({age_text(now - s.created_at)}), at {snapshot_version(s)}.")
        if i.restore_estimate is not None:
            lines.append(f"Restore time: {estimate_text(i.restore_estimate)}.")
        if i.loss is not None:
            from bot.slack.blocks.preserve import loss_text  # only a plan with a restore option
            lines.append(f"Written since: {loss_text(i.loss)}")
    elif o.method == "force-previous" and i.target is not None:
        lines.append(f"Sets the recorded version to {number(i.target)}; the schema is not changed.")
    elif o.method == "recover" and i.target is not None:
        lines.append(f"Sets the recorded version to {number(i.target)}"
                     + (", after running:" if i.drops else "; no SQL runs."))
        lines += [code(statement) for statement in i.drops[:10]]
    lines += [f"No down file for {v}: nothing is undone for it." for v in i.missing_down[:10]]
    return lines


def _typed(command: str) -> str:
    """An option's command as typed: a rollback itself needs its reason (Choose asks for it)."""
    return command + ' --reason "TEXT"' if command.startswith("/rollback ") else command


def _restore_confirm(o: RollbackOption, r: RollbackPlan, now: datetime) -> dict | None:
    """Slack's "are you sure?" before a restore: it throws away everything written since the snapshot."""
    s = o.impact.snapshot if o.impact is not None else None
    if o.method != "restore" or s is None:
        return None
    return confirm_dialog(title=f"Restore snapshot on {r.env}?", confirm="Choose", text=with_hooks(
        f"Replaces the data of {r.env} with snapshot {s.name}. Everything written since {when(s.created_at)} "
        f"({age_text(now - s.created_at)}) is lost.", o.impact.app_hooks,
        f"Next you give a reason; where {r.env} requires it, a second person approves.", CONFIRM_TEXT_CHARS))


def _option(n: int, o: RollbackOption, r: RollbackPlan, now: datetime) -> dict:
    head = f"*{n}. {_title(o, r)}*" + (" · *Recommended*" if o.recommended else "")
    lines = [head, f"_{esc(METHOD_NOTES.get(o.method, o.method))}_"] + _impact(o, now)
    lines += [f":warning: {esc_citing(shorten(w, WARNING_CHARS))}" for w in o.warnings]
    if o.available and o.impact is not None and o.impact.app_hooks is not None:
        lines.append(option_note(o.impact.app_hooks))
    block = {"type": "section"}
    if not o.available:
        lines.append(f"*Not available:* {esc_citing(shorten(o.why_not or 'not offered for this state', WARNING_CHARS))}")
    elif len(o.command) <= BUTTON_VALUE_CHARS:
        lines.append(f"Runs {code(_typed(o.command))}")
        block["accessory"] = {"type": "button", "action_id": CHOOSE_ACTION, "value": o.command,
                              "text": {"type": "plain_text", "text": "Choose"},
                              **({"style": "primary"} if o.recommended else {})}
        confirm = _restore_confirm(o, r, now)
        if confirm is not None:
            block["accessory"]["confirm"] = confirm
    else:  # too long for a button's value: it can still be typed
        lines.append(f"Type {code(_typed(o.command), limit=2500)}")
    block["text"] = mrkdwn("\n".join(lines))
    return block


def plan(r: RollbackPlan, now: datetime) -> Message:
    if not r.options:
        text = f"{bold(r.env)}: {esc(NOTHING_APPLIED)}"
        return Card(plain(text)).section(text).message()
    title = f"{r.env}: rollback options at {version_text(r.state)}"
    card = Card(esc(title)).header(title)
    undoing = (f"*Undoing:* {code(migration_label(r.migration, r.state))}" if r.migration is not None else
               f"*Undoing:* {at_version(r.state.version)} (no migration file has this version)")
    if r.state.dirty:
        undoing += f"\nMigration {number(r.state.version)} failed part-way: its changes may be half applied."
    card.section(undoing)
    if r.schema_version is not None:
        from bot.slack.blocks.schema_version import schema_version_text
        card.section(schema_version_text(r.schema_version, r.state, r.env, advice=False))
    hooks = next((o.impact.app_hooks for o in r.options if o.available and o.impact and o.impact.app_hooks), None)
    if hooks is not None:  # the options that change the database stop the application: say how, once
        card.section(options_text(hooks))
    for n, option in enumerate(r.options[:card.room() - 1], 1):
        card.blocks.append(_option(n, option, r, now))
        if option.method == "restore" and option.available and option.impact and option.impact.loss \
                and option.impact.loss.rows and len(option.command) + 11 <= BUTTON_VALUE_CHARS:
            card.blocks.append({"type": "actions", "elements": [{
                "type": "button", "action_id": CHOOSE_ACTION, "value": f"{option.command} --preserve",
                "text": {"type": "plain_text", "text": f"Choose {n}, keeping the rows written since"}}]})
    return card.context(f"{esc(CHOOSING)} {esc(APP_FIRST)}").message()


def reason_modal_view(*, command: str, callback_id: str, private_metadata: str) -> dict:
    """The modal Choose opens: a rollback is recorded with why it was needed (the guide's practice 4)."""
    return reason_modal(title="Roll back", submit="Roll back", callback_id=callback_id,
                        private_metadata=private_metadata,
                        text=f"Why roll back? {code(command)} runs with your reason, which is recorded in the "
                             "rollback log and shown to whoever approves it.")


# --- after the rollback -------------------------------------------------------------------------

def _quoted(reason: str) -> str:
    return f"“{esc(shorten(reason, REASON_CHARS))}”" if reason.strip() else "_(none given)_"


def _checklist(r: RollbackResult) -> list[tuple[bool | None, str]]:
    items: list[tuple[bool | None, str]] = []
    if r.snapshots:
        items.append((True, "*Snapshot taken before the rollback:* " + ", ".join(code(s) for s in r.snapshots)))
    else:
        items.append((False, "*No snapshot was taken before the rollback* (safety snapshots are off for this "
                             "environment)"))
    state_file = f" and in {code(r.deployment_state)}" if r.deployment_state else ""
    if r.recorded:
        items.append((True, f"*Reason recorded* in the rollback log{state_file}: {_quoted(r.reason)}"))
    else:
        written = f" (written to {code(r.deployment_state)})" if r.deployment_state else ""
        items.append((False, f"*Reason not recorded* in the rollback log{written}: no control database is "
                             f"configured, or writing failed (see the dbops log). It was: {_quoted(r.reason)}"))
    if r.approved_by:
        items.append((True, f"*Approved by a second person:* {user_ref(r.approved_by)} "
                            f"(requested by {user_ref(r.requester)})"))
    else:
        items.append((None, f"*Second person's approval:* not required for this environment "
                            f"(run by {user_ref(r.requester)})"))
    verified, found = version_verified(r)
    items.append((verified, f"*Version {'verified' if verified else 'NOT as expected'}:* {esc(found)}"))
    if r.app_hooks is not None:
        items += hooks_checklist(r.app_hooks)
    h = r.app_health
    if h is None:
        items.append((None, "*Health check:* no `health_url` configured"))
    else:
        items.append((h.passed, f"*Health check {'passed' if h.passed else 'FAILED'}:* {code(h.url)}: "
                                f"{esc(shorten(health_text(h), WARNING_CHARS))}{waited(h)}"))
    fks = count(r.foreign_keys_checked, "foreign key") + " checked"
    if r.orphans:
        rows = sum(o.rows for o in r.orphans)
        items.append((False, f"*Integrity: {count(rows, 'orphaned row')}* in {len(r.orphans):,} of the "
                             f"{fks} (rows whose reference points at nothing):"))
    elif r.foreign_keys_checked:
        items.append((True, f"*Integrity:* {fks}: no orphaned rows"))
    else:
        items.append((None, "*Integrity:* the database has no foreign keys to check"))
    return items


def _headline(r: RollbackResult) -> str:
    if r.outcome is Outcome.FAILED:
        return f"{bold(r.env)}: rollback failed: {esc(failure_words(r))}"
    if r.outcome is Outcome.NO_CHANGE:
        return f"{bold(r.env)}: nothing was rolled back; the database is at {version_text(r.after)}"
    return (f"{bold(r.env)}: rolled back from {number(r.before.version)} to {number(r.after.version)} by "
            f"{esc(method_words(r))} (reason: “{esc(shorten(r.reason, 200))}”)")


def _joined(head: Message, tail: Message) -> Message:
    """``head``, a divider, then ``tail``'s blocks, within the body's block budget."""
    room = BODY_BLOCKS - len(head.blocks) - 1
    blocks = tail.blocks if len(tail.blocks) <= room else tail.blocks[:room - 1] + [
        {"type": "context", "elements": [mrkdwn(f"{ELLIPSIS}shortened to fit in one Slack message.")]}]
    return Message(text=head.text, blocks=head.blocks + [{"type": "divider"}] + blocks)


def result(r: RollbackResult, step: Message) -> Message:
    """The final card: the checklist, ticked from what happened, then ``step`` (the operation's own reply)."""
    headline = _headline(r)
    card = Card(plain(headline)).section(headline)
    rows = [f"{TICKS[done]} {item}" for done, item in _checklist(r)]
    card.section("*Rollback checklist*\n" + "\n".join(rows))
    if r.dropped:
        card.lines([code(statement) for statement in r.dropped[:ORPHANS_SHOWN]], total=len(r.dropped), max_blocks=1,
                   title="*Leftovers of the failed migration removed:*")
    if r.orphans:
        card.lines([f"• {code(orphan_columns(o))} → {code(o.references)}: {rows_text(o.rows)} "
                    f"_(constraint {code(o.constraint)})_" for o in r.orphans[:ORPHANS_SHOWN]],
                   total=len(r.orphans), max_blocks=2, more=f"use {code('--format json')} in a shell for all")
    card.section("*For people* (dbops cannot tick these)\n" + "\n".join(f"☐ {esc(item)}" for item in REMINDERS))
    return _joined(card.message(), step)
