"""User-group membership from Slack (contract: ``commands.policy.Directory``).

Membership is read with ``usergroups.users.list`` and cached for ``ttl_seconds``: a policy
check must not cost a Web API call per command, and a change in Slack is seen within minutes.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands.errors import CommandError


class SlackDirectory:
    def __init__(self, client: WebClient, *, ttl_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._cache.get(group)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as err:
            raise CommandError(f"Could not read the members of user group {group} from Slack "
                               f"({err.response.get('error', 'no answer')}), so nobody is let in through it.") from None
        users = frozenset(response.get("users") or ())
        with self._lock:
            self._cache[group] = (self.clock() + self.ttl_seconds, users)
        return users
