"""Slack wording for the two-person rule: the request card, its final state, refusals, the list.

The request card is posted in the channel for everyone; its buttons carry the request id and
the listeners answer them with ``APPROVE_ACTION``, ``DENY_ACTION`` and ``CANCEL_ACTION``. When
the request is decided the card is replaced by ``render_request_final`` (no buttons). Refusals
(``ApprovalRefused``) are private replies to whoever pressed the button.
"""

from __future__ import annotations

from datetime import datetime

from bot.slack.blocks.kit import (
    BODY_BLOCKS, CONFIRM_TEXT_CHARS, ELLIPSIS, TEXT_CHARS, Card, Message, bold, channel_ref, clip, code, confirm_dialog,
    count, esc, extended, mrkdwn, plain, pre, shorten, user_ref, when,
)
from bot.slack.blocks.drills import estimate_text
from bot.slack.blocks.migrate import json_hint, snapshot_version
from bot.slack.blocks.plan import blocking_rows, finding_row
from bot.slack.blocks.schema_change import schema_rows
from bot.slack.blocks.wording import age_text, at_version, number, until_text, version_text
from commands.grammar_words import MAX_REASON
from commands.lint.findings import blocking_first
from commands.approval.results import (ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalRequest,
                                       ApprovalsResult, Impact)
from commands.migrate.results import MigrationInfo
from commands.results import Reason
from commands.units import human_size

__all__ = ["APPROVE_ACTION", "CANCEL_ACTION", "DENY_ACTION", "decided", "deny_modal_view", "needed", "pending_list",
           "refused", "render_request_final"]

APPROVE_ACTION = "dbops_approve"
DENY_ACTION = "dbops_deny"
CANCEL_ACTION = "dbops_cancel"
ROWS_SHOWN = 30
DELETES_SHOWN = 10  # a request card lists a few; the dry run lists them all
REASON_CHARS = 500
# Approving one of these loses something or unblocks a migration: Slack asks "are you sure?" first.
CONFIRMED_OPERATIONS = ("down", "goto", "force", "restore", "cleanup", "lock-release", "unblock")
DRY_RUN_REQUEST_CAVEAT = ("Its statements hold their locks until the rollback, and the rollback does not undo "
                          "sequence values it takes (nextval, setval, serial or identity inserts).")


def _slash(r: ApprovalRequest) -> str:
    return code(f"/{r.command}")


def _at(at: datetime, now: datetime) -> str:
    """A time as people say it: "16:45 UTC" today, the full date otherwise."""
    return f"{at:%H:%M} UTC" if at.date() == now.date() else when(at)


def _expiry(r: ApprovalRequest, now: datetime) -> str:
    return f"in {until_text(r.expires_at - now)}, at {_at(r.expires_at, now)}"


# --- the impact, in plain words ------------------------------------------------------------------

def _migration_row(m: MigrationInfo) -> str:
    return code(f"{m.version}_{m.name}")


def _impact(card: Card, r: ApprovalRequest, now: datetime) -> None:
    i: Impact = r.impact
    target = f", {at_version(i.before.version)} → {number(i.target)}" if i.target is not None else ""
    if r.operation == "unblock":
        from bot.slack.blocks.lock_waits import unblock_impact  # only an unblock's card names a session
        unblock_impact(card, r)
    elif r.operation == "force" and i.drops:
        card.section(f"*Removes what migration {number(i.before.version)} left behind, then sets the recorded version "
                     f"to {number(i.target if i.target is not None else -1)}* (now {version_text(i.before)}) and marks "
                     "it clean. These statements run, and lose no data (an index, an empty table):")
        card.section(pre("\n".join(i.drops)))
    elif r.operation == "force" and r.command.startswith("migrate baseline"):
        card.section(f"*Records version {number(i.target if i.target is not None else -1)}* (now "
                     f"{version_text(i.before)}) and marks it clean, only if the live schema is exactly that version. "
                     "No SQL runs: the schema is not changed.")
    elif r.operation == "force":
        card.section(f"*Sets the recorded version to {number(i.target if i.target is not None else -1)}* "
                     f"(now {version_text(i.before)}) and marks it clean. No SQL runs: the schema is not changed.")
    elif i.reverts:
        card.lines([_migration_row(m) for m in i.reverts[:ROWS_SHOWN]], total=len(i.reverts), max_blocks=2,
                   title=f"*Reverts {count(len(i.reverts), 'migration')}{target}, in this order:*")
        if i.data_loss:
            card.lines([f":warning: {code(s.filename)} line {s.line:,}: {esc(shorten(s.description, 300))}"
                        for s in i.data_loss[:ROWS_SHOWN]], total=len(i.data_loss), max_blocks=2,
                       title="*Data that will be lost:*")
        if i.missing_down:
            card.lines([f"No down file: nothing is undone for version {v}" for v in i.missing_down[:ROWS_SHOWN]],
                       total=len(i.missing_down), max_blocks=1)
        schema_rows(card, r)
    elif i.applies:
        trying, n = r.operation == "dry-run", count(len(i.applies), "migration")
        title = (f"*Tries {n} on the live database{target}, in this order, then rolls them back:*" if trying
                 else f"*Applies {n}{target}, in this order:*")
        card.lines([_migration_row(m) for m in i.applies[:ROWS_SHOWN]], total=len(i.applies), max_blocks=2,
                   title=title)
        schema_rows(card, r)
        stopping, rest = blocking_first(i.findings, i.block_severity)
        if stopping:
            blocking_rows(card, stopping, "approval is needed", json_hint("migrate plan", r.env))
        if rest:
            card.lines([f"{code(f.filename)} " + finding_row(f, blocking=False) for f in rest[:ROWS_SHOWN]],
                       total=len(rest), max_blocks=2,
                       title=f"*{'Other lint' if stopping else 'Lint'} findings (`/migrate plan`):*",
                       more=json_hint("migrate plan", r.env))
        if trying:
            card.context(DRY_RUN_REQUEST_CAVEAT)
    elif i.snapshot is not None:
        s = i.snapshot
        took = f"\n*Restore time:* {estimate_text(i.restore_estimate)}." if i.restore_estimate else ""
        card.section(f"*Restores snapshot {code(s.name)}* ({snapshot_version(s)}).\n"
                     f"Everything written since {when(s.created_at)} ({age_text(now - s.created_at)}) will be lost."
                     f"{took}")
        if not i.restore_from and i.loss is not None:
            from bot.slack.blocks.preserve import keeping_text, loss_text  # only a restore's card
            preserving = "--preserve" in r.command.split()
            keeping = keeping_text(preserving, i.loss)
            card.section(f"*Written since the snapshot:* {loss_text(i.loss)}" + (f"\n{keeping}" if keeping else ""))
        if i.restore_from:
            card.section(f":warning: *It is a snapshot of {esc(i.restore_from)}*: the data of {bold(i.restore_from)} "
                         f"replaces the data of {bold(r.env)}. Restoring another environment's snapshot "
                         f"(`restore_from`) always needs the approval of an approver of {bold(r.env)}.")
    elif i.deletes:
        card.lines([f"{code(s.name)} · {human_size(s.size)} · {age_text(now - s.created_at)}"
                    for s in i.deletes[:DELETES_SHOWN]], total=len(i.deletes), max_blocks=2,
                   title=f"*Deletes {count(len(i.deletes), 'snapshot')}, {human_size(i.delete_bytes)}:*",
                   more=json_hint("snapshot cleanup --dry-run", r.env))
    else:
        card.section("At the state it was requested against, it changes nothing.")


def _consequence(r: ApprovalRequest, now: datetime) -> str:
    """What approving does, in one plain sentence (a dialog's text is plain: no names as code)."""
    i: Impact = r.impact
    target = f", version {number(i.before.version)} → {number(i.target)}" if i.target is not None else ""
    if r.operation == "force" and i.drops:
        return (f"Drops {count(len(i.drops), 'leftover')} of the failed migration on {r.env}, then sets the recorded "
                f"version to {number(i.target if i.target is not None else -1)} and marks it clean.")
    if r.operation == "force":
        return (f"Sets the recorded version of {r.env} to {number(i.target if i.target is not None else -1)} and marks "
                f"it clean. No SQL runs.")
    if i.reverts:
        lost = f" Data their down files drop ({count(len(i.data_loss), 'statement')}) is lost." if i.data_loss else ""
        return f"Reverts {count(len(i.reverts), 'migration')} on {r.env}{target}.{lost}"
    if i.applies:
        return f"Applies {count(len(i.applies), 'migration')} on {r.env}{target}."
    if i.snapshot is not None:
        source = f" (a snapshot of {i.restore_from})" if i.restore_from else ""
        return (f"Replaces the data of {r.env} with snapshot {i.snapshot.name}{source}. Everything written since "
                f"{when(i.snapshot.created_at)} ({age_text(now - i.snapshot.created_at)}) is lost.")
    if i.deletes:
        return f"Deletes {count(len(i.deletes), 'snapshot')} of {r.env} ({human_size(i.delete_bytes)}) for good."
    if r.operation == "lock-release":
        return f"Releases the migration lock of {r.env}, so the next migration may start."
    if r.operation == "unblock" and i.blocker is not None:
        verb = "Ends the session" if "--terminate" in r.command else "Cancels the running query"
        return f"{verb} of pid {i.blocker.pid} ({i.blocker.application_name or 'unknown application'}) on {r.env}."
    return f"Runs it on {r.env}."


def _approve_confirm(r: ApprovalRequest, now: datetime) -> dict:
    from bot.slack.blocks.app_hooks import with_hooks
    return confirm_dialog(title=f"Approve {r.operation} on {r.env}?", confirm="Approve",
                          text=with_hooks(_consequence(r, now), r.impact.app_hooks,
                                          f"It runs at once, as requested: /{r.command}", CONFIRM_TEXT_CHARS))


def needed(result: ApprovalNeeded, now: datetime) -> Message:
    """The request card, for everyone in the channel, with Approve, Deny and Cancel buttons."""
    r = result.request
    headline = f"{bold(r.env)}: {user_ref(r.requester)} asks to run {_slash(r)}: a second person must approve it"
    card = Card(plain(headline)).section(headline)
    card.fields([("Request", code(r.id)), ("Expires", _expiry(r, now)),
                 ("Database now", version_text(r.impact.before))])
    _impact(card, r, now)
    if r.impact.app_hooks is not None:
        from bot.slack.blocks.app_hooks import plan_text
        card.section(plan_text(r.impact.app_hooks))
    card.context(f"An approver of {bold(r.env)} other than {user_ref(r.requester)} must approve; only "
                 f"{user_ref(r.requester)} can cancel. Or type {code(f'/dbops approve {r.id}')}.")
    buttons = [{"type": "button", "action_id": action, "value": r.id, "text": {"type": "plain_text", "text": label},
                **({"style": style} if style else {})}
               for action, label, style in ((APPROVE_ACTION, "Approve", "primary"), (DENY_ACTION, "Deny", "danger"),
                                            (CANCEL_ACTION, "Cancel", None))]
    if r.operation in CONFIRMED_OPERATIONS:
        buttons[0]["confirm"] = _approve_confirm(r, now)
    if r.impact.loss is not None and r.impact.loss.rows and "--preserve" not in r.command.split():
        from bot.slack.blocks.preserve import PRESERVE_ACTION  # only a restore's card
        buttons.append({"type": "button", "action_id": PRESERVE_ACTION, "value": f"{r.command} --preserve",
                        "text": {"type": "plain_text", "text": "Ask again with --preserve"}})
    return extended(card.message(), {"type": "actions", "elements": buttons})


def deny_modal_view(*, request_id: str, callback_id: str, private_metadata: str) -> dict:
    """The modal Deny opens: a denial needs a reason, which the requester sees on the card."""
    return reason_modal(title="Deny request", submit="Deny", callback_id=callback_id,
                        private_metadata=private_metadata,
                        text=f"Deny request {code(request_id)}? Say why: the requester sees it on the request card.")


def reason_modal(*, title: str, submit: str, text: str, callback_id: str, private_metadata: str) -> dict:
    """A modal that asks for a reason, read back from ``state.values["reason"]["reason"]``."""
    return {"type": "modal", "callback_id": callback_id, "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": submit}, "close": {"type": "plain_text", "text": "Back"},
            "blocks": [{"type": "section", "text": mrkdwn(text)},
                       {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason"},
                        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True,
                                    "max_length": MAX_REASON}}]}


# --- the card once decided -------------------------------------------------------------------------

def _joined(head: Message, tail: Message | None) -> Message:
    """``head`` then ``tail``'s blocks, within the body's block budget."""
    if tail is None:
        return head
    room = BODY_BLOCKS - len(head.blocks)
    blocks = tail.blocks if len(tail.blocks) <= room else tail.blocks[:room - 1] + [
        {"type": "context", "elements": [mrkdwn(f"{ELLIPSIS}shortened to fit in one Slack message.")]}]
    return Message(text=head.text, blocks=head.blocks + blocks)


def _by(r: ApprovalRequest, now: datetime) -> str:
    who = user_ref(r.decided_by) if r.decided_by else "someone"
    return who + (f" at {_at(r.decided_at, now)}" if r.decided_at else "")


def _final_line(r: ApprovalRequest, now: datetime) -> str:
    """What became of the request, said after "<command> (request r…)"."""
    match r.state:
        case "executing":
            return f"was approved by {_by(r, now)} — running{ELLIPSIS}"
        case "executed":
            return f"was approved by {_by(r, now)} and run."
        case "failed":
            why = f": {esc(shorten(r.reason, REASON_CHARS))}" if r.reason else ""
            return f"was approved by {_by(r, now)}, and it failed{why}."
        case "denied":
            why = f": “{esc(shorten(r.reason, REASON_CHARS))}”" if r.reason else ""
            return f"was denied by {_by(r, now)}{why}. Nothing was changed."
        case "cancelled":
            return f"was cancelled by {_by(r, now)}. Nothing was changed."
        case "expired":
            return f"expired at {_at(r.expires_at, now)} without approval. Nothing was changed."
        case "void":
            why = f" ({esc(shorten(r.reason, REASON_CHARS))})" if r.reason else ""
            return (f"is void: the database changed since it was requested{why}. Nothing was run; "
                    "make a new request if it is still needed.")
    return f"is {esc(r.state)}."


def render_request_final(request: ApprovalRequest, *, now: datetime, result_message: Message | None = None) -> Message:
    """The request card once decided (no buttons), with the operation's own reply under it if given."""
    if request.state == "pending":
        return needed(ApprovalNeeded(env=request.env, request=request), now)
    headline = f"{bold(request.env)}: {_slash(request)} (request {code(request.id)}) {_final_line(request, now)}"
    card = Card(plain(headline)).section(headline)
    card.context(f"Asked by {user_ref(request.requester)} at {_at(request.created_at, now)}.")
    return _joined(card.message(), result_message)


# --- replies to a button or a command ------------------------------------------------------------------

def _decided_state(r: ApprovalRequest, now: datetime) -> str:
    """Where an already decided request stands, after "Request r… (<command>)"."""
    by = _by(r, now)
    return {"pending": "is still waiting", "executing": f"was already approved by {by}; it is running now",
            "executed": f"was already approved by {by} and run", "failed": f"was already approved by {by}; it failed",
            "denied": f"was already denied by {by}", "cancelled": "was cancelled by its requester",
            "expired": f"expired at {_at(r.expires_at, now)}",
            "void": "is void: the database changed since it was requested"}.get(r.state, f"is {esc(r.state)}")


def refused(result: ApprovalRefused, now: datetime) -> Message:
    """A private reply: why that button or command did nothing."""
    r, rid = result.request, code(result.request_id)
    what = f"request {rid}" + (f" ({_slash(r)})" if r else "")
    subject = "R" + what[1:]  # the same at the start of a sentence
    env = bold(result.env or (r.env if r else "its environment"))
    again = f" To run it, ask again: {_slash(r)}." if r else ""
    match result.reason:
        case Reason.SELF_APPROVAL:
            text = (f"You asked for {what}, so you cannot approve it: someone else among the approvers of {env} "
                    f"must. To withdraw it, press Cancel or type {code(f'/dbops cancel {result.request_id}')}.")
        case Reason.NOT_APPROVER:
            text = (f"You are not one of the approvers of {env}, so you cannot approve or deny {what}. "
                    f"If you asked for it, withdraw it with Cancel or {code(f'/dbops cancel {result.request_id}')}.")
        case Reason.UNMAPPED_SHELL_USER:
            account = result.detail or "?"
            line = code(f'"{account}" = "U…"')
            text = (f"You are the operating-system account {code(account)}, which {code('[cli] users')} does not map "
                    f"to a Slack user id, so you cannot approve or deny {what}. To answer as yourself, add {line} "
                    f"there (your Slack user id, one of the approvers of {env}).")
        case Reason.EXPIRED:
            at = f" at {_at(r.expires_at, now)}" if r else ""
            text = f"{subject} expired{at} without approval; nothing was changed.{again}"
        case Reason.DECIDED:
            text = f"{subject} {_decided_state(r, now) if r else 'was already decided'}. This did nothing."
        case Reason.STATE_CHANGED:
            detail = f" ({esc(shorten(result.detail, REASON_CHARS))})" if result.detail else ""
            text = (f"{subject} is void: the database is not as it was when it was requested{detail}. "
                    f"Nothing was run.{again or ' Make a new request if it is still needed.'}")
        case Reason.NOT_REQUESTER:
            who = user_ref(r.requester) if r else "whoever asked for it"
            text = f"Only {who}, who asked for {what}, can cancel it. Approvers can deny it instead."
        case Reason.UNKNOWN_REQUEST:
            detail = f": {esc(shorten(result.detail, REASON_CHARS))}" if result.detail else ""
            text = (f"There is no request {rid} that can be answered{detail}. "
                    f"{code('/dbops approvals')} lists the ones waiting.")
        case Reason.CONTROL_UNREACHABLE:
            detail = f" ({esc(shorten(result.detail, REASON_CHARS))})" if result.detail else ""
            text = (f"{subject} was not answered: dbops' control database, where requests are kept, cannot be "
                    f"reached{detail}. Nothing was changed; answer it again when the control database is back.")
        case Reason.WRONG_CHANNEL:
            where = f" in {channel_ref(r.channel)}" if r and r.channel else " in a channel of that environment"
            text = f"{subject} is for {env}, which does not take commands here: answer it{where}."
        case _:
            text = f"{subject}: refused ({esc(result.reason.value)})."
    return Card(plain(text)).section(text).message()


def decided(result: ApprovalDecided, now: datetime, result_message: Message | None) -> Message:
    """The reply to Approve (the operation's own reply under a headline), Deny or Cancel."""
    r = result.request
    if result_message is not None:
        headline = (f"Approved by {user_ref(r.decided_by or '?')}: {_slash(r)} (request {code(r.id)}, asked by "
                    f"{user_ref(r.requester)})")
        head = Card(plain(headline)).section(headline).message()
        return Message(text=clip(f"{plain(headline)} — {result_message.text}", TEXT_CHARS),
                       blocks=_joined(head, result_message).blocks)
    headline = f"{bold(r.env)}: {_slash(r)} (request {code(r.id)}) {_final_line(r, now)}"
    return Card(plain(headline)).section(headline).message()


def pending_list(result: ApprovalsResult, now: datetime) -> Message:
    scope = f" for {result.env}" if result.env else ""
    if not result.pending:
        text = f"No requests are waiting for approval{scope}."
        return Card(esc(text)).section(esc(text)).message()
    title = f"Waiting for approval{scope}: {count(len(result.pending), 'request')}"
    rows = [f"{code(r.id)} · {bold(r.env)} · {_slash(r)} · asked by {user_ref(r.requester)} "
            f"{age_text(now - r.created_at)} · expires {_expiry(r, now)}" for r in result.pending[:ROWS_SHOWN]]
    card = Card(esc(title)).header(title)
    card.lines(rows, total=len(result.pending), title="*Oldest first:*",
               more=f"use {code('dbops dbops approvals --format json')} for all")
    deny = '/dbops deny REQUEST --reason "TEXT"'
    return card.context(f"Answer one in Slack with the buttons on its card, or {code('/dbops approve REQUEST')} · "
                        f"{code(deny)}.").message()
