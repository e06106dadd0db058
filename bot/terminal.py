"""Block Kit as terminal text: what a person would read in Slack, buttons as numbered choices.

The one wording of a result is its Block Kit (``bot.slack.blocks.render``); the console and the CLI show
those blocks through this module, so a shell reads what the channel reads (``bot.cli.shell.result_text``).

Pure functions over the blocks the bot posts. mrkdwn loses its emphasis marks (``*bold*``,
``_italic_``, ``~strike~``; code spans are kept), mentions become ``@name`` and ``#channel``
from the console's tables, links ``text (url)``, and Slack's three entities are unescaped.
Styling (bold headers, dim context) is ANSI, and only when ``ansi`` is set (a terminal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.console.payloads import buttons

_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
_EMPHASIS = [re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)\*(?![\w*])"),
             re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)_(?![\w_])"),
             re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)~(?![\w~])")]
_ANGLE = re.compile(r"<([^<>]+)>")
# The emoji codes the bot's messages use, as the characters Slack would show.
EMOJI = {"broom": "🧹", "floppy_disk": "💾", "heavy_minus_sign": "➖", "information_source": "ℹ️", "lock": "🔒",
         "no_entry": "⛔",
         "rotating_light": "🚨", "warning": "⚠️", "white_check_mark": "✅", "x": "❌"}
_EMOJI = re.compile(r":([a-z_]+):")


@dataclass(frozen=True)
class Names:
    """Who and where, for mentions: user id -> name, channel id -> name."""

    users: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)


def _angle(match: re.Match, names: Names) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + names.users.get(target[1:], label or target[1:])
    if target.startswith("#"):
        return "#" + (label or names.channels.get(target[1:], target[1:]))
    if target.startswith("!subteam^"):
        return "@" + (label or target.removeprefix("!subteam^"))
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!"):
        return "@" + target[1:]
    return f"{label} ({target})" if label else target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_text(text: str, names: Names) -> str:
    """Slack mrkdwn as plain text (see the module's docstring)."""
    spans: list[str] = []

    def keep(match: re.Match) -> str:  # code is shown literally (fences dropped): set it aside
        span = match.group(1)
        spans.append(span[3:-3].strip("\n") if span.startswith("```") else span)
        return f"\x00{len(spans) - 1}\x00"

    text = _ANGLE.sub(lambda m: _angle(m, names), _CODE.sub(keep, text))
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return _unescape(re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text))


def _element_text(element: dict[str, Any], names: Names) -> str:
    if element.get("type") == "mrkdwn":
        return mrkdwn_text(element.get("text", ""), names)
    if element.get("type") == "plain_text":
        return element.get("text", "")
    return element.get("alt_text", "")


def _field(element: dict[str, Any], names: Names) -> str:
    label, _, value = _element_text(element, names).partition("\n")
    return f"{label}: " + value.replace("\n", "\n    ") if value else label


@dataclass
class Style:
    ansi: bool = False

    def bold(self, text: str) -> str:
        return f"\x1b[1;4m{text}\x1b[0m" if self.ansi else text

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.ansi else text


def render_blocks(blocks: list[dict[str, Any]], fallback: str, names: Names, style: Style | None = None, *,
                  choices: bool = True) -> list[str]:
    """The lines a message shows, its buttons last as ``[1] Approve  [2] Deny …`` (unless
    ``choices`` is off: a surface where nothing can be clicked)."""
    style = style or Style()
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = block["text"].get("text", "")
            lines += [style.bold(title)] if style.ansi else [title, "=" * min(len(title), 72)]
        elif kind == "section":
            if block.get("text"):
                lines += _element_text(block["text"], names).splitlines()
            lines += [_field(f, names) for f in block.get("fields", [])]
        elif kind == "context":
            lines.append(style.dim("  " + " · ".join(_element_text(e, names) for e in block.get("elements", []))))
        elif kind == "divider":
            lines.append(style.dim("-" * 40))
        elif kind == "input":
            lines.append(block.get("label", {}).get("text", "") + ":")
    if not blocks and fallback:
        lines += mrkdwn_text(fallback, names).splitlines()
    shown = [f"[{n}] {element['text'].get('text', '')}" for n, (_, element) in enumerate(buttons(blocks), 1)]
    if shown and choices:
        lines.append("  ".join(shown))
    return lines
