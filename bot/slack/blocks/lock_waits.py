"""Slack wording for lock waits: who blocks a migration (in its progress, on its result), the
buttons that cancel the blocker's query or end its session and retry, and ``migrate unblock``'s
result.

A blocker's query is shown as PostgreSQL keeps it, literals included: trimmed, passed through
the secret masking, and said to be so.
"""

from __future__ import annotations

from datetime import timedelta

from bot.slack.blocks.kit import BODY_BLOCKS, Card, Message, bold, code, confirm_dialog, count, esc, extended, plain
from bot.slack.blocks.wording import span_text
from commands import grammar as g
from commands.approval.results import ApprovalRequest
from commands.migrate.results import MigrateResult, UnblockResult
from commands.redact import redact
from commands.results import Refusal
from commands.sessions import Blocker, LockWait

UNBLOCK_ACTION = "dbops_unblock"
BLOCKERS_SHOWN = 5
QUERY_NOTE = ("Queries are shown as PostgreSQL keeps them, literals included, trimmed; "
              "another role's are hidden unless dbops' role is in pg_read_all_stats.")


def _for(seconds: float | None) -> str:
    return span_text(timedelta(seconds=seconds)) if seconds is not None else "?"


def blocker_text(b: Blocker) -> str:
    """One session in the way: who, from where, doing what for how long, holding which lock."""
    app = b.application_name or "unknown application"
    where = "a client hidden from dbops' role" if b.hidden else b.client
    text = f"pid {b.pid} ({esc(app)}, user {esc(b.user or '?')}, from {esc(where)})"
    if b.state:
        text += f", {esc(b.state)} for {_for(b.state_seconds)}"
    if b.xact_seconds is not None:
        text += f", its transaction open for {_for(b.xact_seconds)}"
    if b.lock:
        text += f", holding {esc(b.lock)}" + (f" on {code(b.relation, 80)}" if b.relation else "")
    if b.waiting:
        text += ", itself waiting for a lock"
    if b.superuser:
        text += ", a superuser's session"
    if b.query:
        text += f": {code(redact(b.query), 320)}" + (" _(trimmed)_" if b.query_trimmed else "")
    elif b.hidden:
        text += ": query hidden from dbops' role"
    return text


def waiting_text(w: LockWait) -> str:
    """The progress line while a file waits: what for, which try, who is in the way (``attempts``
    0: before anything runs, waiting for sessions already in the way to finish)."""
    what = f"waiting for {esc(w.waited_for)}" if w.waited_for else "waiting for a lock"
    tries = f"try {w.attempts} of {w.retries + 1}"
    after = f", next in {w.next_in_s:.1f} s" if w.next_in_s is not None else ""
    if not w.attempts:
        what, tries, after = "waiting, before it starts, for sessions in its way to finish", "", ""
        after = f" ({w.next_in_s:.0f} s at most)" if w.next_in_s is not None else ""
    who = "; ".join(blocker_text(b) for b in w.blockers[:2]) or "blocker not seen yet"
    more = f" and {len(w.blockers) - 2} more" if len(w.blockers) > 2 else ""
    return f"{what} ({tries}{after}), blocked by {who}{more}" if tries else f"{what}{after}: {who}{more}"


def blockers_section(card: Card, blockers: tuple[Blocker, ...]) -> None:
    """On a plan: the sessions whose locks conflict with the plan's now."""
    card.lines([f"• {blocker_text(b)}" for b in blockers[:BLOCKERS_SHOWN]], total=len(blockers),
               title=f"*{count(len(blockers), 'session')} now in the way of these statements' locks:* `/migrate up` "
                     "waits for them (or refuses, per `blockers`); those holding a transaction open longer than "
                     "`lock_timeout` are what it waits for.")
    card.context(QUERY_NOTE)


def waited(w: LockWait) -> str:
    """A line for a migration that met lock waits (and got past them, or failed otherwise)."""
    who = ", ".join(f"pid {b.pid} ({esc(b.application_name or 'unknown application')})" for b in w.blockers[:3])
    return (f"It waited for {esc(w.waited_for or 'a lock')}: {w.attempts:,} {'try' if w.attempts == 1 else 'tries'}"
            + (f", behind {who}" if who else "") + ".")


def _button(b: Blocker, env: str, terminate: bool, retry: bool) -> dict:
    """``retry``: the unblock runs ``up`` again after it (it knows no other migration's arguments)."""
    command = g.MigrateUnblock(env=env, pid=b.pid, terminate=terminate,
                               session=b.session_start.isoformat() if b.session_start else None, retry=retry)
    label = f"End session {b.pid}" if terminate else f"Cancel query of {b.pid}"
    what = ("Ends its session: its open transaction is rolled back and the application sees its connection "
            "closed." if terminate else "Cancels its running query: the application sees it fail.")
    then = "Then the migration runs again." if retry else "Then run the migration again."
    return {"type": "button", "action_id": f"{UNBLOCK_ACTION}_{'end' if terminate else 'cancel'}_{b.pid}",
            "value": "/" + g.canonical(command, env),
            "text": {"type": "plain_text", "text": (label + " and retry" if retry else label)[:75]},
            "style": "danger",
            "confirm": confirm_dialog(title=f"{'End session' if terminate else 'Cancel query'} {b.pid}?",
                                      confirm="Ask for it", text=f"{what} {then} It needs "
                                      "a second person's approval where unblock requires one.")}


def _with_buttons(card: Card, blockers: tuple[Blocker, ...], env: str, operation: str) -> Message:
    buttons, retry = [], operation == "up"
    for b in blockers[:2]:
        if b.state == "active":
            buttons.append(_button(b, env, False, retry))
        buttons.append(_button(b, env, True, retry))
    message = card.message()
    return extended(message, {"type": "actions", "elements": buttons}) if buttons else message


def refused_blocked(card: Card, r: Refusal) -> Message:
    """``up``, ``down`` or ``goto`` refused before it ran anything: sessions in the way of its
    statements. Only an ``up``'s buttons retry it."""
    waited = "It waited for them as long as `blocker_wait_seconds` allows" if r.detail == "wait" else (
        "This environment refuses at once (`blockers = \"refuse\"`)")
    card.section(f"Nothing was changed: no snapshot was taken and no SQL ran. {waited}; while they hold their locks "
                 "each statement would wait behind them, and every query on those tables behind it.")
    card.lines([f"• {blocker_text(b)}" for b in r.blockers[:BLOCKERS_SHOWN]], total=len(r.blockers),
               title="*In the way:*")
    again = "run `/migrate up` again" if r.operation == "up" else "run the same command again"
    card.context(QUERY_NOTE, f"When they are done, {again}; or cancel or end one below.")
    return _with_buttons(card, r.blockers, r.env, r.operation)


def blocked(card: Card, r: MigrateResult) -> Message:
    """The failed migration's card with who blocked it and, per session, the way forward."""
    w = r.lock_wait
    card.lines([f"• {blocker_text(b)}" for b in w.blockers[:BLOCKERS_SHOWN]], total=len(w.blockers),
               title=f"*It waited for {esc(w.waited_for or 'a lock')} {count(w.attempts, 'time')}, each within "
                     f"lock_timeout, then gave up; in its way:*")
    card.context(QUERY_NOTE, "An idle transaction holds its locks until it ends: cancelling a query does nothing "
                             "to it; ending its session does.")
    return _with_buttons(card, w.blockers, r.env, r.operation)


def unblock(r: UnblockResult, retried: Message | None) -> Message:
    """The result; ``retried``: the card of the ``up`` that ran after it, shown below."""
    verb = "ended the session of" if r.terminate else "cancelled the query of"
    if r.gone:
        headline = (f"{bold(r.env)}: nothing signalled: pid {r.pid} is no longer the session that was in the way"
                    if r.blocker is not None else f"{bold(r.env)}: nothing signalled: no session has pid {r.pid} now")
        card = Card(plain(headline)).section(headline).section(
            "It ended (and its pid may have been given to a new connection, which is never signalled). "
            f"Run {code(f'/migrate up {r.env}')} again.")
        return card.message()
    headline = f"{bold(r.env)}: {verb} pid {r.pid}"
    card = Card(plain(headline)).section(headline)
    if r.blocker is not None:
        card.section(f"It was {blocker_text(r.blocker)}")
    message = card.message()
    if retried is None:
        return message
    return Message(text=f"{message.text}; then {retried.text}",
                   blocks=message.blocks + retried.blocks[:BODY_BLOCKS - len(message.blocks)])


def unblock_impact(card: Card, r: ApprovalRequest) -> None:
    """What an unblock request would signal, as found when it was asked for."""
    b = r.impact.blocker
    verb = "*Ends the session*" if "--terminate" in r.command else "*Cancels the running query*"
    retry = (" Then it runs `/migrate up` again, as if its requester typed it: where `up` needs approval, that "
             "is a request of its own." if "--retry" in r.command else "")
    if b is None:
        card.section(f"{verb} of a pid that no session had when this was asked for: approving it changes nothing.")
        return
    card.section(f"{verb} of {blocker_text(b)}.{retry}")
    card.context("Only that session is signalled: if its pid belongs to another connection by then (it ended, and "
                 "the pid was reused), nothing is sent. " + QUERY_NOTE)
