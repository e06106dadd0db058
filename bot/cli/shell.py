"""What a shell prints: a result or message as the console shows it (its Slack blocks as terminal
text, ``bot.terminal``), and commands as a shell types them: the one place the CLI words the
grammar's usage lines and the commands the domain's messages cite (``commands.usage``); Slack
keeps the slash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.terminal import Names, Style, render_blocks
from commands.usage import CITED, Usage

if TYPE_CHECKING:
    from bot.slack.blocks.kit import Message
    from commands.kinds import Result


def shell(line: str) -> str:
    """A usage line or command (``migrate up [N] [ENV]``, ``/rollback --steps 1``) as typed in a
    shell (``dbops migrate up [N] [ENV]``). ``dbops lock …`` and ``dbops doctor`` need no second
    ``dbops``, and the shell's help is ``--help``."""
    line = line.removeprefix("/")
    if line == "dbops help":
        return "dbops --help"
    if line.startswith(("dbops lock", "dbops doctor")):
        line = line.removeprefix("dbops ")
    return "dbops " + line


def shell_usage(usage: Usage) -> str:
    """A usage's alternatives on one line."""
    return "  or  ".join(shell(line) for line in usage)


def shell_words(text: str) -> str:
    """``text`` with every command it cites (`` `/snapshot list` ``) as a shell types it."""
    return CITED.sub(lambda cited: f"`{shell(cited[1])}`", text)


def message_text(message: Message, *, names: Names | None = None, ansi: bool = False) -> str:
    """A message as a shell shows it: its blocks as terminal text without buttons (nothing can be
    clicked), every command cited as a shell types it."""
    lines = render_blocks(message.blocks, message.text, names or Names(), Style(ansi), choices=False)
    return shell_words("\n".join(lines))


def result_text(result: Result, *, command: str, now: datetime | None = None, names: Names | None = None,
                ansi: bool = False) -> str:
    """``result`` as a shell shows it (``message_text`` of its Slack reply). ``command`` is what
    was run, in no surface's syntax (``migrate up 2 staging``); ``names`` are who the user ids
    it mentions are, where the shell knows."""
    from bot.slack.blocks.render import render
    return message_text(render(result, now=now or datetime.now(UTC), command="/" + command), names=names, ansi=ansi)
