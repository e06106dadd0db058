"""Who may run what, where: the first step of every operation, answering "why not".

A command that comes from a channel (Slack, the console) is accepted only in one of its
environment's ``channels``; a state-changing one (a dry run included: it runs SQL on the live
database) only from its ``operators`` when that list is set, and that holds in a shell too,
where the user is the operating-system account's Slack id (``commands.identity``). Entries that start with ``S`` are user groups, whose members a
Directory supplies. The scheduler is not checked here: the configuration is its authority.
"""

from __future__ import annotations

from typing import Protocol

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.identity import Actor
from commands.results import Reason, Refusal


class Directory(Protocol):
    def members(self, group: str) -> frozenset[str]:
        """The user ids in user group ``group`` (may be cached). Raises CommandError when the
        directory cannot answer, so that an unknown membership never grants anything."""


def is_group(principal: str) -> bool:
    return principal.startswith("S")


class Policy:
    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory

    def includes(self, principals: tuple[str, ...], user: str) -> bool:
        """Whether ``user`` is one of ``principals``, directly or through a user group."""
        if user in principals:
            return True
        groups = [p for p in principals if is_group(p)]
        return self.directory is not None and any(user in self.directory.members(group) for group in groups)

    def check(self, command: g.Command, actor: Actor, env: EnvironmentSettings, operation: str) -> Refusal | None:
        if actor.channel is None and actor.surface != "cli":
            return None
        if actor.channel is not None and actor.channel not in env.channels:
            return Refusal(env=env.name, operation=operation, reason=Reason.WRONG_CHANNEL, allowed=env.channels)
        if g.changes_state(command) and env.operators and not self.includes(env.operators, actor.user):
            return Refusal(env=env.name, operation=operation, reason=Reason.NOT_OPERATOR, allowed=env.operators)
        return None
