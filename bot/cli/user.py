"""Who is typing at this shell: the process's operating-system account, mapped by ``[cli] users``
(``commands.identity``). ``dbops`` commands and ``dbops console`` on a real configuration both
ask here."""

from __future__ import annotations

import os
import pwd

from commands.config import Settings
from commands.identity import Actor
from commands.identity import shell_user


def os_account() -> str:
    """The operating-system account running this process (its effective uid), as the system's
    user database names it; a uid with no name is its number. Never $USER or $LOGNAME: whoever
    runs a shell sets those."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a container's arbitrary uid (runAsUser) with no passwd entry
        return str(uid)


def shell_actor(settings: Settings) -> Actor:
    """Who a command typed in this shell runs as: the account's Slack id from [cli] users, or os:NAME."""
    return Actor(user=shell_user(os_account(), settings.cli_users), surface="cli")
