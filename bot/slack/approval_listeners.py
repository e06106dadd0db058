"""The approval card's buttons: Approve runs the operation (exactly once, whoever clicks how
often), Deny asks for a reason in a modal, Cancel withdraws the request. Every decision is
the executor's; this module only translates clicks into commands and keeps the card current.

The card is the channel message that ``listeners`` posted for the request. Approving turns it
into the operation's progress message and then into its final state with the result;
refusals (the requester approving, someone not an approver, an expired or void request) go
privately to whoever clicked.
"""

from __future__ import annotations

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.render import Message, render
from bot.slack.blocks.approvals import render_request_final
from bot.slack.progress import ProgressMessage
from commands import grammar as g
from commands.identity import Actor
from commands.errors import CommandError, UsageError
from commands.approval.results import ApprovalDecided, ApprovalRefused
from commands.kinds import Result

log = structlog.get_logger("dbops.approvals.slack")
DENY_MODAL = "dbops_deny_reason"


def _request_id(value: str) -> str | None:
    """The request id a button carries; a forged value is refused by the grammar's pattern."""
    try:
        parsed = g.parse(["dbops", "cancel", value])
    except UsageError:
        return None
    return parsed.request_id


class ApprovalHandlers:
    def __init__(self, handlers) -> None:
        self.handlers = handlers  # listeners.Handlers: the executor, delivery and progress settings

    # --- the card -----------------------------------------------------------------------
    def _update_card(self, client: WebClient, channel: str, ts: str | None, message: Message) -> None:
        if ts is None:
            return
        try:
            client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
        except SlackApiError as err:
            log.error("approval.card_update_failed", error=err.response.get("error"), ts=ts)

    def _finish(self, client: WebClient, channel: str, ts: str | None, result: Result | None,
                message: Message, actor: Actor, respond) -> None:
        """Show a decision: the card's final state for everyone, a refusal to the clicker."""
        if isinstance(result, ApprovalDecided):
            now = self.handlers.now()
            inner = render(result.result, now=now, command=result.request.command) if result.result else None
            self._update_card(client, channel, ts, render_request_final(result.request, now=now, result_message=inner))
            return
        if isinstance(result, ApprovalRefused) and result.request is not None and result.request.state in (
                "expired", "void"):
            # The card must stop offering buttons that can no longer work. (A request someone
            # else decided is theirs to show: its card gets their result, never ours.)
            self._update_card(client, channel, result.request.message_ts or ts,
                              render_request_final(result.request, now=self.handlers.now()))
        self.handlers.send(respond, client, actor, message, replace_original=False)

    # --- buttons ------------------------------------------------------------------------
    def ack(self, ack) -> None:
        ack()

    def approve(self, body: dict, action: dict, client: WebClient, respond) -> None:
        self._decide(body, action, client, respond, lambda request_id: g.DbopsApprove(request_id=request_id))

    def cancel(self, body: dict, action: dict, client: WebClient, respond) -> None:
        self._decide(body, action, client, respond, lambda request_id: g.DbopsCancel(request_id=request_id))

    def _decide(self, body: dict, action: dict, client: WebClient, respond, make) -> None:
        actor = Actor(user=body["user"]["id"], channel=(body.get("channel") or {}).get("id"), surface="slack")
        ts = (body.get("container") or {}).get("message_ts")
        request_id = _request_id(action.get("value", ""))
        if request_id is None:
            self.handlers.send(respond, client, actor, render_unknown(action.get("value", "")), replace_original=False)
            return
        command = make(request_id)
        reporter = found = None
        if isinstance(command, g.DbopsApprove):
            try:
                found = self.handlers.executor.approvals.get(request_id)
            except CommandError:  # the control database is away: the executor refuses it, saying so
                pass
        if found is not None:  # the card shows the approved operation's progress, then its result
            request = found[0]
            reporter = ProgressMessage(client, channel=actor.channel, user=request.requester, command=request.command,
                                       environment=request.env, interval=self.handlers.progress_interval,
                                       tracker=self.handlers.tracker, ts=ts)
        result, message = self.handlers.execute(command, actor, g.canonical(command, "").strip(), reporter)
        if reporter is not None:
            reporter.stop(result.outcome.value if result is not None else "error")
        self._finish(client, actor.channel, ts, result, message, actor, respond)

    def open_deny_now(self, ack, body: dict, action: dict, client: WebClient) -> None:
        """Deny needs a reason: ask for it in a modal. A trigger id lives three seconds, so the
        modal opens in the ack listener itself (views.open is one quick call)."""
        ack()
        request_id = _request_id(action.get("value", ""))
        if request_id is None:
            return
        container = body.get("container") or {}
        client.views_open(trigger_id=body["trigger_id"], view=deny_modal(request_id, container.get("channel_id"),
                                                                          container.get("message_ts")))

    def ack_deny(self, ack, view: dict) -> None:
        reason = view["state"]["values"]["reason"]["reason"].get("value") or ""
        try:
            g.parse(["dbops", "deny", "r0000000000", "--reason", reason])
        except UsageError as err:
            ack(response_action="errors", errors={"reason": err.message})
            return
        ack()

    def deny(self, body: dict, view: dict, client: WebClient, respond) -> None:
        meta = view.get("private_metadata", "").split("|")
        if len(meta) != 3:
            return
        request_id, channel, ts = meta
        reason = view["state"]["values"]["reason"]["reason"].get("value") or ""
        actor = Actor(user=body["user"]["id"], channel=channel or None, surface="slack")
        try:
            command = g.parse(["dbops", "deny", request_id, "--reason", reason])
        except UsageError:
            return  # refused in the modal already
        result, message = self.handlers.execute(command, actor, f"dbops deny {request_id}", None)
        if isinstance(result, ApprovalDecided):
            self._finish(client, channel, ts, result, message, actor, respond)
            return
        try:
            client.chat_postEphemeral(channel=channel, user=actor.user, text=message.text, blocks=message.blocks)
        except SlackApiError as err:
            log.error("approval.refusal_lost", error=err.response.get("error"), user=actor.user)


def deny_modal(request_id: str, channel: str | None, ts: str | None) -> dict:
    from bot.slack.blocks.approvals import deny_modal_view
    return deny_modal_view(request_id=request_id, callback_id=DENY_MODAL,
                           private_metadata=f"{request_id}|{channel or ''}|{ts or ''}")


def render_unknown(value: str) -> Message:
    from bot.slack.blocks.render import render_error
    return render_error(UsageError("That button does not belong to a request dbops knows."), command="(button)")
