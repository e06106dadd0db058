"""Where the console sits: a channel the configuration maps to an environment, so commands work.

In Slack a command is accepted only in one of its environment's ``channels``. The console
starts in the first channel of the first environment that has channels. An environment with
none (a configuration written for the command line, or before the Slack app exists) accepts
the console's own channel, ``C0CONSOLE``, and only in this process: that copy of the
settings is never the one ``dbops serve`` reads, so no Slack channel gains anything. The
console user is still a shell user ([cli] users): operators and approvers apply as ever.

Slack names channels; the configuration knows only ids, so a channel is shown by the names of
the environments it maps to (``#production``), and the console's own as ``#console``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from commands.config import Settings

CONSOLE_CHANNEL = "C0CONSOLE"


@dataclass(frozen=True)
class Room:
    """A channel the console can sit in, and the environments that accept commands there."""

    id: str
    name: str
    environments: tuple[str, ...]

    def describe(self) -> str:
        return f"#{self.name} ({self.id}), environments: {', '.join(self.environments)}"


def with_console_channel(settings: Settings) -> Settings:
    """``settings`` where an environment with no ``channels`` accepts ``CONSOLE_CHANNEL``."""
    environments = {name: env if env.channels else dataclasses.replace(env, channels=(CONSOLE_CHANNEL,))
                    for name, env in settings.environments.items()}
    return dataclasses.replace(settings, environments=environments)


def rooms(settings: Settings, names: dict[str, str] | None = None) -> list[Room]:
    """Every channel of ``settings``, in the order the configuration lists them, each once.
    ``names``: channel id -> name, where one is known (the demo's)."""
    accepted: dict[str, list[str]] = {}
    for env in settings.environments.values():
        for channel in env.channels:
            accepted.setdefault(channel, []).append(env.name)
    names = names or {}

    def name(channel: str, envs: list[str]) -> str:
        if channel in names:
            return names[channel]
        return "console" if channel == CONSOLE_CHANNEL else "+".join(envs)
    return [Room(channel, name(channel, envs), tuple(envs)) for channel, envs in accepted.items()]


def find(rooms_: list[Room], wanted: str) -> Room | None:
    """The room called ``wanted``: its name (``#`` optional), its id, or an environment it accepts."""
    wanted = wanted.removeprefix("#")
    return (next((r for r in rooms_ if wanted in (r.name, r.id)), None)
            or next((r for r in rooms_ if wanted in r.environments), None))
