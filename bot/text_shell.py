"""Commands as a shell types them: the one place the CLI words the grammar's usage lines and
the commands the domain's messages cite (``commands.usage``); Slack keeps the slash."""

from __future__ import annotations

from commands.usage import CITED, Usage


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

