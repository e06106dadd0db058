"""The rollback plan's buttons: choosing an option asks for the reason (a modal), then runs
``/rollback … --reason`` as the person who chose it, which becomes an approval request where
the environment requires one. Forcing the previous version is a plain ``/migrate force``
request: it has no rollback of its own to give a reason to."""

from __future__ import annotations

import shlex

import structlog
from slack_sdk import WebClient

from bot.slack.blocks.rollback import reason_modal_view
from commands import grammar as g
from commands.identity import Actor
from commands.errors import UsageError

log = structlog.get_logger("dbops.rollback.slack")
REASON_MODAL = "dbops_rollback_reason"
PLACEHOLDER_REASON = "--reason x"


def _option(value: str) -> g.Command | None:
    """What a Choose button may start: a rollback with a target, or a force; nothing else."""
    try:
        parsed = g.parse(f"{value} {PLACEHOLDER_REASON}" if value.startswith("/rollback") else value)
    except UsageError:
        return None
    if isinstance(parsed, g.Rollback) and not parsed.planning or isinstance(parsed, g.MigrateForce):
        return parsed
    return None


class RollbackHandlers:
    def __init__(self, handlers) -> None:
        self.handlers = handlers  # listeners.Handlers

    def ack(self, ack) -> None:
        ack()

    def choose(self, body: dict, action: dict, client: WebClient, respond) -> None:
        """Runs right after the ack: the modal needs the click's trigger, valid three seconds."""
        value = action.get("value", "")
        chosen = _option(value)
        actor = Actor(user=body["user"]["id"], channel=(body.get("channel") or {}).get("id"), surface="slack")
        if chosen is None:
            return
        if isinstance(chosen, g.MigrateForce):
            self.handlers.perform(value, actor, client, respond)
            return
        client.views_open(trigger_id=body["trigger_id"],
                          view=reason_modal_view(command=value, callback_id=REASON_MODAL,
                                                 private_metadata=f"{actor.channel or ''}|{value}"))

    def ack_reason(self, ack, view: dict) -> None:
        reason = view["state"]["values"]["reason"]["reason"].get("value") or ""
        try:
            g.parse(["rollback", "--steps", "1", "--reason", reason])
        except UsageError as err:
            ack(response_action="errors", errors={"reason": err.message})
            return
        ack()

    def submit(self, body: dict, view: dict, client: WebClient) -> None:
        channel, _, value = view.get("private_metadata", "").partition("|")
        reason = view["state"]["values"]["reason"]["reason"].get("value") or ""
        if _option(value) is None:
            return
        actor = Actor(user=body["user"]["id"], channel=channel or None, surface="slack")
        self.handlers.perform(f"{value} --reason {shlex.quote(' '.join(reason.split()))}", actor, client, None)
