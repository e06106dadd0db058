"""The console at a terminal: line editing with a history, and log lines kept out of the conversation.

A person typing gets the standard library's readline (arrow keys, Ctrl-R, the previous
session's lines) with its history in the user's state directory; a script on stdin gets
none, so what it reads is exactly its lines. The bot logs as in production, but into a file
in that directory, unless ``--verbose`` asks for the log lines in the terminal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import platformdirs

from bot.logs import configure_logging

HISTORY_LINES = 2000


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
