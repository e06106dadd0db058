"""The console at a terminal: line editing with a history, and log lines kept out of the conversation.

A person typing gets the standard library's readline (arrow keys, Ctrl-R, the previous
session's lines) with its history in the user's state directory; a script on stdin gets
none, so what it reads is exactly its lines. The bot logs as in production, but into a file
in that directory, unless ``--verbose`` asks for the log lines in the terminal.
``interactive`` is the loop a person types into.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

import platformdirs

from bot.logs import configure_logging

HISTORY_LINES = 2000


class Conversation(Protocol):
    """What ``interactive`` types into: the console session (``bot.console.session.Console``),
    named by what it offers so that the session may import this module and not the reverse."""

    user: str
    confirm: Callable[[str], bool] | None

    @property
    def channel_name(self) -> str: ...

    def say(self, *lines: str) -> None: ...

    def run(self, line: str, ask: Callable[[str], str | None]) -> bool: ...


def state_dir() -> Path:
    """``~/.local/state/dbops`` ($XDG_STATE_HOME/dbops)."""
    return platformdirs.user_state_path("dbops")


def console_log() -> Path:
    return state_dir() / "console.log"


def history_file() -> Path:
    return state_dir() / "console_history"


def log_to(path: Path) -> TextIO:
    """Send every log line of this process to ``path`` (appended): structlog's, redacted as
    always, and the libraries' (bolt's, slack_sdk's) from the logging module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", encoding="utf-8", buffering=1)  # open for the rest of the process
    configure_logging(level=os.environ.get("DBOPS_LOG_LEVEL") or "INFO", stream=stream)
    logging.basicConfig(handlers=[logging.StreamHandler(stream)], level=logging.WARNING, force=True)
    return stream


def line_editing(history: Path) -> Callable[[], None]:
    """Give ``input()`` readline's editing and the history in ``history``; return what saves it.

    Only for a terminal: readline edits whatever ``input()`` reads once it is imported."""
    try:
        import readline
    except ImportError:  # a Python built without it: plain lines, still usable
        return lambda: None
    history.parent.mkdir(parents=True, exist_ok=True)
    history.touch(mode=0o600, exist_ok=True)  # the commands typed, reasons included: the user's alone
    try:
        readline.read_history_file(history)
    except OSError:
        pass  # unreadable or not a history: start a new one
    readline.set_history_length(HISTORY_LINES)
    readline.set_auto_history(True)

    def save() -> None:
        try:
            readline.write_history_file(history)
        except OSError:
            pass  # a full or read-only disk must not end the session
    return save


def _unrecorded(prompt: str) -> str:
    """``input()`` for an answer (a modal's reason, a dialog's yes), which the history does not keep:
    the up arrow is for commands."""
    readline = sys.modules.get("readline")
    if readline is not None:
        readline.set_auto_history(False)
    try:
        return input(prompt)
    finally:
        if readline is not None:
            readline.set_auto_history(True)


def interactive(console: Conversation) -> int:
    """Read lines from a person at a terminal, with readline's editing and the saved history."""
    save_history = line_editing(history_file())

    def ask(label: str) -> str | None:
        try:
            return _unrecorded(f"{label}: ")
        except EOFError:
            return None

    def confirm(prompt: str) -> bool:
        try:
            return _unrecorded(prompt).strip().lower() in ("y", "yes")
        except EOFError:
            return False

    console.confirm = confirm
    try:
        while True:
            try:
                line = input(f"[{console.user}] #{console.channel_name}> ")
            except (EOFError, KeyboardInterrupt):
                console.say("")
                return 0
            if not console.run(line, ask):
                return 0
    finally:
        save_history()
