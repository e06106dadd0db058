"""Slack wording for the application's pause and resume hooks around a restore or a rollback:
the approval card's line (and its Approve dialog's sentence), the rollback options card's, the
checklist lines ticked from the hooks' answers, and the refusal when the pause hook did not
answer 2xx. The terminal shows these same lines (``bot.terminal``)."""

from __future__ import annotations

from bot.slack.blocks.kit import ELLIPSIS, code, duration_text, esc, shorten
from commands.app.results import AppHealthCheck, AppHooks, HookCall, HookPlan

ANSWER_CHARS = 300


def _answer(c: HookCall) -> str:
    return esc(shorten(c.message, ANSWER_CHARS))


def _hook(c: HookCall, article: str = "the") -> str:
    return f"{article} {c.hook} hook {code(f'{c.method} {c.url}')}"


def plan_text(p: HookPlan) -> str:
    """What the approver agrees to besides the change: the application stopped and started."""
    lines = []
    if p.pause:
        lines.append(f"*The application is paused first:* once the lock is taken, dbops calls {code(p.pause)} and "
                     "changes nothing unless it answers 2xx.")
    else:
        lines.append("*The application is not paused by dbops* (no `app_pause_url`): stop its writes by hand first.")
    if p.resume:
        health = (f", then waits up to {p.health_wait_seconds:,} s for {code(p.health_url)} to pass"
                  if p.health_url else "")
        lines.append(f"*Then resumed:* afterwards, whether the change worked or not, dbops calls {code(p.resume)}"
                     f"{health}.")
    else:
        lines.append("*Not resumed by dbops* (no `app_resume_url`): start the application by hand afterwards.")
    return "\n".join(lines)


def options_text(p: HookPlan) -> str:
    """The rollback options card's section on the hooks, above the options that say they use them."""
    return f"*The application's hooks* (around each option that says so):\n{plan_text(p)}"


def option_note(p: HookPlan) -> str:
    """One option's line: choosing it pauses and resumes the application (mrkdwn)."""
    if p.pause and p.resume:
        return "_Pauses the application first and resumes it after, through its hooks (above)._"
    if p.pause:
        return "_Pauses the application first through its pause hook (above); start it again by hand after._"
    return "_Calls the application's resume hook after (above); stop its writes by hand first._"


def dialog_sentence(p: HookPlan) -> str:
    """The same in a confirmation dialog's plain text (no code spans, no URLs: the card names them)."""
    if p.pause and p.resume:
        return "dbops pauses the application first (its pause hook) and resumes it after."
    if p.pause:
        return "dbops pauses the application first (its pause hook); start it again by hand after."
    return "dbops does not pause the application (stop its writes by hand first); it calls its resume hook after."


def with_hooks(text: str, p: HookPlan | None, tail: str, limit: int) -> str:
    """A dialog's ``text``, the hooks' sentence, then ``tail``: ``text`` is cut first, so that the
    sentence about the application survives the dialog's ``limit`` (the tail may be cut after)."""
    if p is None:
        return f"{text} {tail}"
    sentence = dialog_sentence(p)
    room = limit - len(sentence) - 1
    if len(text) > room:
        text = text[:room - 1] + ELLIPSIS
    return f"{text} {sentence} {tail}"


def checklist(h: AppHooks) -> list[tuple[bool | None, str]]:
    """The checklist's lines about the application: (ticked, line); None for neither."""
    items: list[tuple[bool | None, str]] = []
    if h.plan.pause is None:
        items.append((None, "*Application stopped:* no `app_pause_url` configured: dbops did not stop it"))
    elif h.paused is None:
        items.append((None, "*Application stopped:* not needed: nothing was about to change, so the pause hook "
                            "was not called"))
    elif h.paused.done:
        items.append((True, f"*Application stopped:* {_hook(h.paused)} answered {_answer(h.paused)}"))
    else:
        items.append((False, f"*Application NOT stopped:* {_hook(h.paused)} answered {_answer(h.paused)}"))
    after = " after the failed change" if h.change_failed else ""
    if h.plan.resume is None:
        items.append((None, "*Application restarted:* no `app_resume_url` configured: start it by hand"))
    elif h.resumed is None:
        items.append((None, "*Application restarted:* not needed: it was not stopped"))
    elif h.resumed.done:
        items.append((True, f"*Application restarted{after}:* {_hook(h.resumed)} answered {_answer(h.resumed)}"))
    else:
        items.append((False, f"*Application NOT restarted{after}:* {_hook(h.resumed)} answered "
                             f"{_answer(h.resumed)}: start it by hand"))
    return items


def waited(h: AppHealthCheck) -> str:
    """How long the health check was awaited, after the check's own words ("" when read once)."""
    return f" (after waiting {duration_text(h.waited_ms)})" if h.waited_ms is not None else ""


def health_item(h: AppHealthCheck) -> tuple[bool, str]:
    return h.passed, (f"*Health check {'passed' if h.passed else 'FAILED'}:* {code(h.url)}: "
                      f"{esc(shorten(h.message, ANSWER_CHARS))}{waited(h)}")


def refusal_text(h: AppHooks | None) -> str:
    """Why an operation stopped at a failing pause hook, and what became of the application."""
    if h is None or h.paused is None:
        return "The application's pause hook did not answer 2xx. Nothing was changed."
    lines = [f"{_hook(h.paused, 'The')} answered {_answer(h.paused)}. Nothing was changed: the lock was "
             "released and no snapshot was taken."]
    if h.resumed is not None:
        state = "" if h.resumed.done else ": start the application by hand if it stopped"
        lines.append(f"In case the application had half-stopped, {_hook(h.resumed)} was called: "
                     f"{_answer(h.resumed)}{state}.")
    lines.append("Run it again once the hook answers 2xx, or stop writes by hand and take `app_pause_url` out of "
                 "the configuration.")
    return "\n".join(lines)
