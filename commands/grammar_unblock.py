"""``migrate unblock PID [ENV] --cancel|--terminate [--session STARTED] [--retry]``: the command
that signals a session in a migration's way, and its words (apart from ``commands.grammar``,
which holds every other verb)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from commands.errors import UsageError
from commands.grammar_words import quoted_word, split_options, trailing_env
from commands.usage import Usage


@dataclass(frozen=True, kw_only=True)
class MigrateUnblock:
    """Cancel the query of (``terminate``: end) session ``pid``, which blocks a migration; with
    ``retry``, then run ``migrate up`` again. ``session``: the session's start (backend_start,
    ISO 8601) as it was shown, so that a pid reused by another connection is never signalled;
    None: the session that has that pid when it is asked for (its approval request is bound to it)."""

    env: str | None = None
    pid: int
    terminate: bool = False
    session: str | None = None
    retry: bool = False

    def arguments(self) -> list[str]:
        """Its words after ``migrate unblock``, as ``commands.grammar.canonical`` writes them."""
        return ([str(self.pid), "--terminate" if self.terminate else "--cancel"]
                + ([] if self.session is None else ["--session", self.session]) + (["--retry"] if self.retry else []))


def unblock_words(args: list[str], usage: Usage) -> MigrateUnblock:
    positional, env, seen, values = split_options(args, usage, ("--cancel", "--terminate", "--retry"), ("--session",))
    positional, env = trailing_env(positional, env, usage, 1, required=1)
    if not positional:
        raise UsageError("unblock needs the pid of the session in the way (the failed migration names it).",
                         usage=usage)
    if len(seen & {"--cancel", "--terminate"}) != 1:
        raise UsageError("Say what to do: --cancel (cancel its query) or --terminate (end its session).", usage=usage)
    if not re.fullmatch(r"[1-9][0-9]{0,9}", positional[0]) or int(positional[0]) > 2**31 - 1:
        raise UsageError(f"{quoted_word(positional[0])} is not a process id.", usage=usage)
    session = values.get("--session")
    if session is not None:
        try:
            started = datetime.fromisoformat(session)
        except ValueError:
            started = None
        if started is None or started.tzinfo is None:
            raise UsageError("--session takes the session's start as shown, such as "
                             f"2026-12-01T15:40:00.123456+00:00, not {quoted_word(session)}.", usage=usage)
    return MigrateUnblock(env=env, pid=int(positional[0]), terminate="--terminate" in seen, session=session,
                          retry="--retry" in seen)
