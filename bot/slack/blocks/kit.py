"""Block Kit building blocks: escaping, Slack's limits, and a card that packs lines into sections.

Every renderer in ``bot.slack.blocks`` builds its reply with ``Card``, so Slack's limits are
enforced in one place, by construction:

- at most 50 blocks (``Card`` keeps ``BODY_BLOCKS`` so a caller can add attribution and a
  button); section text ≤ 3000 characters; ≤ 10 fields of ≤ 2000; header ≤ 150; context ≤ 10
  elements; the fallback text ≤ 3000; a button's confirmation dialog: title ≤ 100, text ≤ 300,
  its two buttons ≤ 30.
- a long list is packed into as few sections as fit, and what does not fit becomes one line,
  "…and 9,970 more (use …)".

Text that came from people or files (reasons, names, PostgreSQL's messages) goes through
``esc`` exactly once: ``<!channel>`` cannot ping and a backtick cannot break a code span.
Every mrkdwn object is ``verbatim``, so Slack does not turn "@here" or "#channel" in such
text into mentions either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from commands.usage import CITED

MAX_BLOCKS = 50
BODY_BLOCKS = MAX_BLOCKS - 2  # room for the caller's "<@U…> ran …" line and a Refresh button
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
HEADER_CHARS = 150
CONTEXT_ELEMENTS = 10
TEXT_CHARS = 3000
CONFIRM_TITLE_CHARS, CONFIRM_TEXT_CHARS, CONFIRM_BUTTON_CHARS = 100, 300, 30
ELLIPSIS = "…"
# A button that runs a read-only command (its value) for whoever presses it, in place: Refresh, a list's More.
REFRESH_ACTION = "dbops_refresh"
BUTTON_VALUE_CHARS = 2000
_BACKTICK = "\u02cb"  # MODIFIER LETTER GRAVE ACCENT: looks like ` but never opens a code span
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,30}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")


@dataclass(frozen=True)
class Message:
    text: str            # the notification/fallback text (plain, ≤ 3000 chars)
    blocks: list[dict]   # Block Kit as JSON-ready dicts


# --- text --------------------------------------------------------------------------------

def esc(value: object) -> str:
    """Untrusted text made inert for mrkdwn: &, <, > as entities, backticks as a look-alike."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", _BACKTICK))


def esc_citing(text: str) -> str:
    """``esc`` for a message of the domain's, whose cited commands (`` `/snapshot list` ``,
    ``commands.usage.CITED``) stay code spans."""
    parts, at = [], 0
    for cited in CITED.finditer(text):
        parts += [esc(text[at:cited.start()]), code("/" + cited[1])]
        at = cited.end()
    return "".join(parts + [esc(text[at:])])


def code(value: object, limit: int = 300) -> str:
    """An inline code span around untrusted text (one line, at most ``limit`` characters)."""
    return f"`{esc(shorten(' '.join(str(value).split()), limit) or ' ')}`"


def pre(text: str) -> str:
    """A code block around untrusted multi-line text."""
    return f"```{esc(text)}```"


def bold(value: object) -> str:
    return f"*{esc(value)}*"


def shorten(text: str, limit: int) -> str:
    """Untrusted text cut to ``limit`` characters, saying how much was cut (before escaping)."""
    if len(text) <= limit:
        return text
    note = f" {ELLIPSIS} ({len(text) - limit:,} more characters)"
    return text[:max(0, limit - len(note))] + note


def clip(mrkdwn: str, limit: int) -> str:
    """Finished mrkdwn cut to ``limit`` without splitting an entity (``&amp;``) or a mention."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[:limit - 4]  # room for the ellipsis and a closing ```
    amp, lt = cut.rfind("&"), cut.rfind("<")
    if amp > cut.rfind(";"):
        cut = cut[:amp]
    if lt > cut.rfind(">"):
        cut = cut[:lt]
    if cut.count("```") % 2:
        return cut + ELLIPSIS + "```"
    return cut + ELLIPSIS + ("`" if cut.replace("```", "").count("`") % 2 else "")


def plain(mrkdwn: str) -> str:
    """A headline without its emphasis, for the notification text (entities stay escaped)."""
    return mrkdwn.replace("*", "").replace("`", "")


def user_ref(user: str) -> str:
    """A Slack user id as a mention; any other name (a shell user) as escaped text."""
    return f"<@{user}>" if _USER_ID.fullmatch(user) else esc(user)


def principal_ref(principal: str) -> str:
    """A user or a user group (``S…``) from the configuration, as a mention."""
    return f"<!subteam^{principal}>" if _GROUP_ID.fullmatch(principal) else user_ref(principal)


def channel_ref(channel: str) -> str:
    return f"<#{channel}>" if _CHANNEL_ID.fullmatch(channel) else esc(channel)


def either(items: Sequence[str], word: str = "or") -> str:
    if len(items) <= 2:
        return f" {word} ".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def when(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"{at:%Y-%m-%d %H:%M} UTC"


def duration_text(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def clock_text(seconds: float) -> str:
    """Elapsed time as a stopwatch shows it: 0:42, 12:05, 1:02:03."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- blocks ------------------------------------------------------------------------------

def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": clip(text, SECTION_CHARS), "verbatim": True}


class Card:
    """One reply, built top to bottom; ``message()`` returns it within Slack's limits."""

    def __init__(self, fallback: str) -> None:
        self.fallback = fallback
        self.blocks: list[dict] = []

    def room(self) -> int:
        return BODY_BLOCKS - len(self.blocks)

    def _add(self, block: dict) -> Card:
        self.blocks.append(block)
        return self

    def header(self, text: str) -> Card:
        """Plain text (Slack does not parse it), cut to the header's 150 characters."""
        text = " ".join(text.split()) or ELLIPSIS
        short = text if len(text) <= HEADER_CHARS else text[:HEADER_CHARS - 1] + ELLIPSIS
        return self._add({"type": "header", "text": {"type": "plain_text", "text": short, "emoji": True}})

    def section(self, text: str) -> Card:
        return self._add({"type": "section", "text": mrkdwn(text)}) if text.strip() else self  # Slack refuses ""

    def fields(self, pairs: Sequence[tuple[str, str]]) -> Card:
        """Label/value pairs side by side (labels are ours; values are finished mrkdwn)."""
        shown = [{"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", FIELD_CHARS), "verbatim": True}
                 for label, value in pairs[:MAX_FIELDS]]
        return self._add({"type": "section", "fields": shown}) if shown else self

    def button(self, text: str, *, action_id: str, value: str) -> Card:
        """A row of one button; none when ``value`` is too long for Slack (say the command too)."""
        if len(value) > BUTTON_VALUE_CHARS:
            return self
        return self._add({"type": "actions", "elements": [
            {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text}}]})

    def context(self, *texts: str) -> Card:
        elements = [mrkdwn(t) for t in texts if t.strip()][:CONTEXT_ELEMENTS]
        return self._add({"type": "context", "elements": elements}) if elements else self

    def lines(self, rows: Sequence[str], *, total: int | None = None, more: str | None = None,
              title: str | None = None, max_blocks: int = 6) -> Card:
        """Rows packed into sections of ≤ 3000 characters, at most ``max_blocks`` of them.

        ``rows`` may be the first few of ``total``; whatever is not shown is summed up in one
        line, "…and N more" followed by ``more`` (where to see them all).
        """
        total = len(rows) if total is None else total
        budget = max(1, min(max_blocks, self.room() - 1))  # one left for the "more" line
        chunks: list[str] = []
        current = title or ""
        shown = 0
        for row in rows:
            row = clip(row, SECTION_CHARS)
            joined = f"{current}\n{row}" if current else row
            if len(joined) <= SECTION_CHARS:
                current, shown = joined, shown + 1
                continue
            if len(chunks) + 1 >= budget:
                break
            chunks.append(current)
            current, shown = row, shown + 1
        if current:
            chunks.append(current)
        for chunk in chunks:
            self.section(chunk)
        if shown < total:
            self.context(f"{ELLIPSIS}and {total - shown:,} more" + (f" ({more})" if more else ""))
        return self

    def message(self) -> Message:
        blocks = self.blocks
        if len(blocks) > BODY_BLOCKS:  # a renderer's lists outgrew their budgets: say so, never drop silently
            blocks = blocks[:BODY_BLOCKS - 1] + [
                {"type": "context", "elements": [mrkdwn(f"{ELLIPSIS}shortened to fit in one Slack message.")]}]
        return Message(text=clip(self.fallback, TEXT_CHARS), blocks=blocks)


def confirm_dialog(*, title: str, text: str, confirm: str, deny: str = "Not yet") -> dict:
    """Slack's confirmation dialog for a button (its ``confirm`` object): every part plain_text,
    cut to the dialog's limits. Slack shows plain_text as typed; angle brackets still become
    look-alikes, so that no ``<!channel>`` in a name is ever sent, parsed or not."""
    def part(value: str, limit: int) -> dict:
        value = " ".join(value.split()).replace("<", "\u2039").replace(">", "\u203a")
        return {"type": "plain_text", "text": value if len(value) <= limit else value[:limit - 1] + ELLIPSIS}
    return {"title": part(title, CONFIRM_TITLE_CHARS), "text": part(text, CONFIRM_TEXT_CHARS),
            "confirm": part(confirm, CONFIRM_BUTTON_CHARS), "deny": part(deny, CONFIRM_BUTTON_CHARS),
            "style": "danger"}


def extended(message: Message, *blocks: dict) -> Message:
    """``message`` with ``blocks`` added at the end, still within 50 blocks."""
    kept = message.blocks[:MAX_BLOCKS - len(blocks)]
    return Message(text=message.text, blocks=kept + list(blocks))
