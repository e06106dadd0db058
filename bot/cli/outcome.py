"""What the command line prints for each outcome, beyond the result's own wording.

In text, a result, a fault and a bug are worded by the Block Kit renderers (``bot.slack.blocks.render``)
and shown as terminal text (``bot.terminal``); this module adds only what is the CLI's own:
where a usage error's help is, and who an unmapped shell user is.

With ``--format json`` each run prints exactly one JSON object on stdout:

- done, or nothing to do: the Result itself, as ``plain`` gives it, plus ``exit_code`` (0),
  on one line (indenting costs 30 ms on a 10,000-snapshot list);
- anything else: ``{"kind": …, "message": …, "exit_code": N, "details": {…}}``. For a Result,
  ``kind`` is ``failed``, ``refused`` or ``awaiting_approval``, ``message`` what the text
  format prints, and ``details`` the Result as ``plain`` gives it. For a fault, ``kind``
  is ``usage_error``, ``config_error``, ``fault`` or ``internal_error``, ``message`` the error's
  own message, and ``details`` names the error (``error``), with a usage error's ``usage``
  lines and ``help`` command.

The caller masks secrets in what it prints (``commands.redact``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from bot.cli.shell import shell_usage, shell_words
from commands.errors import CommandError, ConfigError, UsageError

if TYPE_CHECKING:  # the union of every capability's results: a status needs only its own
    from commands.kinds import Result


def help_command(err: UsageError) -> str:
    """Where a usage error's help is: the command's own, else the list of commands."""
    from bot.cli.help import help_topic  # the help's text: loaded for a fault, not for every result
    topic = help_topic(err.usage) if err.usage else ""
    return f"dbops {topic} --help" if topic else "dbops --help"


def fault_text(err: CommandError, *, command: str, ansi: bool = False) -> str:
    """A fault as a shell user reads it: its Slack wording (``bot.slack.blocks.render.render_error``) as terminal
    text, then, for a usage error, the help the shell has for it. ``command`` is what was typed
    (``dbops migrate down``)."""
    from bot.slack.blocks.render import render_error
    from bot.cli.help import COMMANDS, help_topic
    from bot.cli.shell import message_text
    text = message_text(render_error(err, command=command), ansi=ansi)
    topic = help_topic(err.usage) if isinstance(err, UsageError) and err.usage else ""
    if topic:  # the blocks point to the list of commands; a shell has each command's own help too
        text += f"\nRun `{help_command(err)}` for {'its options and an example' if topic in COMMANDS else 'its commands'}."
    return text


def internal_error_text(*, command: str, reference: str, ansi: bool = False) -> str:
    """A bug, as ``bot.slack.blocks.render.render_internal_error`` words it, as terminal text."""
    from bot.slack.blocks.render import render_internal_error
    from bot.cli.shell import message_text
    return message_text(render_internal_error(command=command, reference=reference), ansi=ansi)


def unmapped_note(account: str) -> str:
    """Said under a refusal that depends on who a shell user is, when [cli] users does not map them."""
    return (f"You are os:{account}: [cli] users in the configuration does not map the account {account} to a "
            f'Slack user id. Add "{account}" = "U…" there to act as yourself.')


def fault_kind(err: CommandError) -> str:
    if isinstance(err, UsageError):
        return "usage_error"
    return "config_error" if isinstance(err, ConfigError) else "fault"


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """``value`` (a Result, or anything in one) as JSON-ready data; a dataclass gets its ``kind``."""
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(value):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        data = {"kind": cls.__name__}
        for name in names:
            data[name] = plain(getattr(value, name))
        return data
    if value is None or cls in (str, int, float, bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):  # e.g. a list's drills, by snapshot name
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _error_object(kind: str, message: str, exit_code: int, details: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, "message": message, "exit_code": exit_code, "details": details})


def result_json(result: Result, exit_code: int, *, message: str = "") -> str:
    """``message``: what the text format prints (the result, and any note under it); a result
    that is not done (``exit_code`` other than 0) carries it."""
    data = plain(result)
    if exit_code == 0:
        return json.dumps({**data, "exit_code": 0})
    return _error_object(result.outcome.value, message, exit_code, data)


def fault_json(err: CommandError, exit_code: int) -> str:
    details: dict[str, Any] = {"error": type(err).__name__}
    if isinstance(err, UsageError):
        details |= {"usage": [shell_usage((line,)) for line in err.usage or ()], "help": help_command(err)}
    elif err.hint:
        details["hint"] = shell_words(err.hint)
    return _error_object(fault_kind(err), shell_words(err.message), exit_code, details)


def internal_error_json(err: BaseException, *, command: str, reference: str) -> str:
    return _error_object("internal_error", internal_error_text(command=command, reference=reference), 1,
                         {"error": type(err).__name__})
