"""What the command line prints for each outcome: faults in text, and every outcome as JSON.

With ``--format json`` each run prints exactly one JSON object on stdout:

- done, or nothing to do: the Result itself, as ``bot.text.render_json`` gives it, plus
  ``exit_code`` (0);
- anything else: ``{"kind": …, "message": …, "exit_code": N, "details": {…}}``. For a Result,
  ``kind`` is ``failed``, ``refused`` or ``awaiting_approval``, ``message`` what the text
  format prints, and ``details`` the Result as ``render_json`` gives it. For a fault, ``kind``
  is ``usage_error``, ``config_error``, ``fault`` or ``internal_error``, and ``details`` names
  the error (``error``), with a usage error's ``usage`` lines and ``help`` command.

The caller masks secrets in what it prints (``commands.redact``).
"""

from __future__ import annotations

import json
from typing import Any

from bot.text import plain, render_text
from bot.text_help import COMMANDS, help_topic
from bot.text_shell import shell_usage, shell_words
from commands.errors import CommandError, ConfigError, UsageError
from commands.kinds import Result

INTERNAL_ERROR = "internal error: a bug in dbops, not anything you did; the log line above has the details."


def help_command(err: UsageError) -> str:
    """Where a usage error's help is: the command's own, else the list of commands."""
    topic = help_topic(err.usage) if err.usage else ""
    return f"dbops {topic} --help" if topic else "dbops --help"


def fault_text(err: CommandError) -> str:
    """A fault as a shell user reads it: the message, then the usage and where help is, or the hint."""
    lines = [shell_words(err.message)]
    if isinstance(err, UsageError) and err.usage:
        topic = help_topic(err.usage)
        what = ("its options and an example" if topic in COMMANDS else "its commands" if topic
                else "the list of commands")
        lines += [f"Usage: {shell_usage(err.usage)}", f"Run `{help_command(err)}` for {what}."]
    elif err.hint and not isinstance(err, UsageError):
        lines.append(shell_words(err.hint))
    return "\n".join(lines)


def fault_kind(err: CommandError) -> str:
    if isinstance(err, UsageError):
        return "usage_error"
    return "config_error" if isinstance(err, ConfigError) else "fault"


def _error_object(kind: str, message: str, exit_code: int, details: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, "message": message, "exit_code": exit_code, "details": details})


def result_json(result: Result, exit_code: int, *, note: str | None = None) -> str:
    """``note``: a line the text format prints under the result (who an unmapped shell user is)."""
    data = plain(result)
    if exit_code == 0:
        return json.dumps({**data, "exit_code": 0})
    message = render_text(result) + (f"\n{note}" if note else "")
    return _error_object(result.outcome.value, message, exit_code, data)


def fault_json(err: CommandError, exit_code: int) -> str:
    details: dict[str, Any] = {"error": type(err).__name__}
    if isinstance(err, UsageError):
        details |= {"usage": [shell_usage((line,)) for line in err.usage or ()], "help": help_command(err)}
    elif err.hint:
        details["hint"] = shell_words(err.hint)
    return _error_object(fault_kind(err), shell_words(err.message), exit_code, details)


def internal_error_json(err: BaseException) -> str:
    return _error_object("internal_error", INTERNAL_ERROR, 1, {"error": type(err).__name__})
