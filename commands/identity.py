"""Who a shell user is: the operating-system account running dbops, as ``[cli] users`` maps it.

A mapped account acts as its Slack user id, so approvers, operators, the two-person rule and
the audit log treat it as that person whatever the surface. An account the map does not name
acts as ``os:NAME``, which no Slack id can be: it may read and ask, never approve.
The account itself comes from the process (the surface looks it up), never from an
environment variable, which anyone can set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UNMAPPED = "os:"


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who asked, and from where (``channel`` None outside Slack)."""

    user: str
    channel: str | None = None
    surface: str = "cli"  # "slack", "console", "cli", "scheduler"
    approved_by: str | None = None  # set when this actor's request runs after a second person approved it


def shell_user(account: str, cli_users: Mapping[str, str]) -> str:
    """The identity a shell user of ``account`` acts as: its Slack id, or ``os:ACCOUNT``."""
    return cli_users.get(account) or UNMAPPED + account


def unmapped_account(user: str) -> str | None:
    """The account name of an unmapped shell user (``os:deploy`` -> ``deploy``), else None."""
    return user[len(UNMAPPED):] if user.startswith(UNMAPPED) else None


def same_person(a: str, b: str, cli_users: Mapping[str, str]) -> bool:
    """Whether identities ``a`` and ``b`` are one person as far as dbops can tell: equal, or one
    an unmapped account that ``[cli] users`` now maps to the other (a request made before its
    account was mapped is still its requester's own)."""
    def resolved(user: str) -> str:
        account = unmapped_account(user)
        return cli_users.get(account, user) if account is not None else user
    return resolved(a) == resolved(b)
