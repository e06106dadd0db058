"""The /dbops operations that are about dbops itself: help and the audit history."""

from __future__ import annotations

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.results import HelpResult, HistoryResult
from commands.kinds import Result


def help_(ctx: Context, command: g.DbopsHelp, env: EnvironmentSettings | None) -> Result:
    return HelpResult(usage=g.all_usage())


def history(ctx: Context, command: g.DbopsHistory, env: EnvironmentSettings | None) -> Result:
    if ctx.audit is None:
        return HistoryResult(env=env.name if env else None, entries=())
    entries = ctx.audit.latest(env.name if env else None, command.limit)
    files = ctx.audit.file_history(env.name if env else None, command.limit)
    return HistoryResult(env=env.name if env else None, entries=tuple(entries), files=tuple(files))
