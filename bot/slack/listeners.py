"""Slash commands and buttons: acknowledge at once, do the work afterwards.

Slack gives a command three seconds. The ack listener only parses (pure, microseconds): a
usage error is answered in the ack itself, privately; anything else is acknowledged empty and
handed to the lazy listener, which runs it through the executor. Who sees the answer:

- an operation that started (the policy allowed it) and is long or changes state is shown in
  the channel, as a progress message that the result replaces;
- a request for a second person's approval is a card in the channel, with its buttons
  (``approval_listeners``); so is a rollback plan, whose buttons ``rollback_listeners`` answers;
- everything else (read-only answers, refusals by the policy, usage errors) goes privately to
  the person who asked, through the command's response URL.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.render import (REFRESH_ACTION, Message, attributed, render, render_error,
                                     render_internal_error, with_refresh)
from bot.slack.approval_listeners import DENY_MODAL, ApprovalHandlers
from bot.slack.blocks.approvals import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION
from bot.slack.blocks.lock_waits import UNBLOCK_ACTION
from bot.slack.blocks.preserve import PRESERVE_ACTION
from bot.slack.blocks.rollback import CHOOSE_ACTION
from bot.slack.blocks.schema_change import schema_thread
from bot.slack.operations import OperationTracker
from bot.slack.rollback_listeners import REASON_MODAL, RollbackHandlers
from bot.slack.progress import ProgressMessage
from commands import grammar as g
from commands.identity import Actor
from commands.context import ignore_progress
from commands.errors import CommandError, UsageError
from commands.executor import Executor
from commands.approval.results import ApprovalNeeded
from commands.kinds import Result

log = structlog.get_logger("dbops.slack")

SLASH_COMMANDS = ("/migrate", "/snapshot", "/rollback", "/dbops")
# Shown in the channel while they run: they change state, or take long enough to need progress.
PUBLIC = g.STATE_CHANGING + (g.SnapshotCreate, g.SnapshotVerify, g.SnapshotDrill)
REFRESHABLE = (g.MigrateStatus, g.SnapshotList, g.DbopsHistory)
# Hears each command's outcome ("done", "failed", … or "error" for a fault) after it ran.
Observer = Callable[[g.Command, Actor, str], None]


def _asker(command: dict) -> Actor | None:
    """Who typed a slash command, and where; None when the payload does not say."""
    user, channel = command.get("user_id"), command.get("channel_id")
    if not all(isinstance(v, str) and v for v in (user, channel, command.get("command"))):
        return None
    return Actor(user=user, channel=channel, surface="slack")


def command_text(command: str, text: str) -> str:
    return f"{command} {text}".strip()


def _payload(message: Message) -> dict:
    return {"text": message.text, "blocks": message.blocks}


@dataclass
class Handlers:
    executor: Executor
    progress_interval: float
    tracker: OperationTracker | None = None
    observe: Observer | None = None
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    # --- slash commands -------------------------------------------------------------
    def ack_command(self, ack, command: dict) -> None:
        if _asker(command) is None:  # Slack always sends these; a request without them is not Slack's
            ack(response_type="ephemeral", text="dbops could not tell who sent this command, or from where.")
            return
        text = command_text(command["command"], command.get("text", ""))
        try:
            g.parse(text)
        except UsageError as err:
            ack(response_type="ephemeral", **_payload(render_error(err, command=text)))
            return
        ack()

    def run_command(self, command: dict, client: WebClient, respond) -> None:
        actor = _asker(command)
        if actor is None:
            return  # answered by the ack
        self.perform(command_text(command["command"], command.get("text", "")), actor, client, respond)

    def perform(self, text: str, actor: Actor, client: WebClient, respond) -> None:
        """Run ``text`` for ``actor`` and show the outcome where it belongs (``respond`` may be
        None where Slack gives no response URL, as for a modal's submission)."""
        try:
            parsed = g.parse(text)
        except UsageError:
            return  # answered by the ack
        reporter = None
        if isinstance(parsed, PUBLIC):
            reporter = ProgressMessage(client, channel=actor.channel, user=actor.user, command=text,
                                       environment=parsed.env, interval=self.progress_interval, tracker=self.tracker)
        result, message = self.execute(parsed, actor, text, reporter)
        if isinstance(parsed, REFRESHABLE) and result is not None:
            message = with_refresh(message, text)
        self._deliver(message, result, actor, text, reporter, client, respond)

    # --- buttons ----------------------------------------------------------------------
    def ack_action(self, ack) -> None:
        ack()

    def run_refresh(self, body: dict, action: dict, client: WebClient, respond) -> None:
        """Run a read-only command again for whoever pressed Refresh, in place."""
        text = action.get("value", "")
        actor = Actor(user=body["user"]["id"], channel=(body.get("channel") or {}).get("id"), surface="slack")
        try:
            parsed = g.parse(text)
        except UsageError as err:
            self.send(respond, client, actor, render_error(err, command=text), replace_original=False)
            return
        if not isinstance(parsed, REFRESHABLE):  # a forged value must not run anything else
            refusal = UsageError("Refresh only re-runs /migrate status, /snapshot list and /dbops history.")
            self.send(respond, client, actor, render_error(refusal, command=text), replace_original=False)
            return
        result, message = self.execute(parsed, actor, text, None)
        if result is not None:
            message = with_refresh(message, text)
        self.send(respond, client, actor, message, replace_original=True)

    def run_unblock(self, body: dict, action: dict, client: WebClient, respond) -> None:
        """A blocked migration's button: ``/migrate unblock …`` for whoever pressed it (a request
        for approval where the environment requires one), and nothing else whatever the value."""
        if isinstance(_button_command(action), g.MigrateUnblock):
            self.perform(action["value"], _button_actor(body), client, respond)

    def run_preserving(self, body: dict, action: dict, client: WebClient, respond) -> None:
        """A restore's card asked again with ``--preserve``: a new request, by whoever pressed it."""
        parsed = _button_command(action)
        if isinstance(parsed, (g.SnapshotRestore, g.Rollback)) and getattr(parsed, "preserve", False):
            self.perform(action["value"], _button_actor(body), client, respond)  # a forged value runs nothing else

    # --- shared -------------------------------------------------------------------------
    def execute(self, command: g.Command, actor: Actor, text: str,
                 reporter: ProgressMessage | None) -> tuple[Result | None, Message]:
        try:
            result = self.executor.run(command, actor, progress=reporter or ignore_progress)
            answer = result, render(result, now=self.now(), command=text)
        except CommandError as err:
            answer = None, render_error(err, command=text)
        except Exception:  # a bug: the user is told plainly, the traceback goes to the log
            reference = uuid.uuid4().hex[:12]
            log.exception("internal_error", reference=reference)
            answer = None, render_internal_error(command=text, reference=reference)
        if self.observe is not None:
            self.observe(command, actor, answer[0].outcome.value if answer[0] is not None else "error")
        return answer

    def _deliver(self, message: Message, result: Result | None, actor: Actor, text: str,
                 reporter: ProgressMessage | None, client: WebClient, respond) -> None:
        outcome = result.outcome.value if result is not None else "error"
        if isinstance(result, ApprovalNeeded):
            self._post_card(client, actor, result, message, respond)
            return
        if reporter is not None and reporter.began:
            shown = attributed(message, user=actor.user, command=text)
            if not reporter.finish(shown, outcome):
                # No progress message to replace (the bot may not be in the channel): the
                # response URL can still tell everyone.
                self.send(respond, client, actor, shown, response_type="in_channel")
            return
        # Not started (refused by the policy, or a usage error): only the asker needs to know.
        self.send(respond, client, actor, message)


    def _post_card(self, client: WebClient, actor: Actor, needed: ApprovalNeeded, message: Message, respond) -> None:
        """A request for approval is shown to the whole channel, where an approver can act on it."""
        try:
            posted = client.chat_postMessage(channel=actor.channel, text=message.text, blocks=message.blocks)
        except SlackApiError as err:
            log.warning("approval.card_post_failed", error=err.response.get("error"))
            self.send(respond, client, actor, message, response_type="in_channel")
            return
        try:
            self.executor.approvals.attach_message(needed.request.id, posted["ts"])
        except CommandError as err:  # the card is up and its buttons work; only the sweeper's edit of it is lost
            log.error("approval.card_not_recorded", request=needed.request.id, error=err.message)
        rest = schema_thread(needed.request)
        if rest is not None:  # what the card had no room for, beside it
            try:
                client.chat_postMessage(channel=actor.channel, thread_ts=posted["ts"], text=rest.text,
                                        blocks=rest.blocks)
            except SlackApiError as err:
                log.warning("approval.schema_thread_failed", error=err.response.get("error"))

    @staticmethod
    def send(respond, client: WebClient, actor: Actor, message: Message, *, response_type: str = "ephemeral",
              **options) -> None:
        """Answer through the response URL; if Slack refuses it (expired after 30 minutes, used
        five times), post the same answer through the Web API, so no answer is lost."""
        try:
            answer = respond(response_type=response_type, **options, **_payload(message)) if respond else None
        except ValueError:  # bolt's way of saying the request carried no response URL
            answer = None
        if answer is not None and answer.status_code == 200:
            return
        if answer is not None:
            log.warning("slack.respond_failed", status=answer.status_code, body=answer.body)
        try:
            if response_type == "in_channel":
                client.chat_postMessage(channel=actor.channel, **_payload(message))
            else:
                client.chat_postEphemeral(channel=actor.channel, user=actor.user, **_payload(message))
        except SlackApiError as err:
            log.error("slack.answer_lost", error=err.response.get("error"), user=actor.user, channel=actor.channel)


def _button_command(action: dict) -> g.Command | None:
    """The command a button's value names, or None for a value that is not one."""
    try:
        return g.parse(action.get("value", ""))
    except UsageError:
        return None


def _button_actor(body: dict) -> Actor:
    return Actor(user=body["user"]["id"], channel=(body.get("channel") or {}).get("id"), surface="slack")


def register(app, handlers: Handlers) -> None:
    """Wire the listeners into a bolt App: every slash command, then the buttons."""
    for name in SLASH_COMMANDS:
        app.command(name)(ack=handlers.ack_command, lazy=[handlers.run_command])
    # A command dbops does not know (a manifest edited by hand) still gets a usage answer; the
    # pattern excludes the known ones so that no request can ever match two listeners.
    known = "|".join(re.escape(name[1:]) for name in SLASH_COMMANDS)
    app.command(re.compile(rf"^/(?!(?:{known})$)"))(ack=handlers.ack_command, lazy=[handlers.run_command])
    app.action(REFRESH_ACTION)(ack=handlers.ack_action, lazy=[handlers.run_refresh])
    app.action(re.compile(rf"^{UNBLOCK_ACTION}_"))(ack=handlers.ack_action, lazy=[handlers.run_unblock])
    app.action(PRESERVE_ACTION)(ack=handlers.ack_action, lazy=[handlers.run_preserving])
    approvals = ApprovalHandlers(handlers)
    app.action(APPROVE_ACTION)(ack=approvals.ack, lazy=[approvals.approve])
    app.action(CANCEL_ACTION)(ack=approvals.ack, lazy=[approvals.cancel])
    app.action(DENY_ACTION)(approvals.open_deny_now)  # the modal needs the click's trigger at once
    app.view(DENY_MODAL)(ack=approvals.ack_deny, lazy=[approvals.deny])
    rollbacks = RollbackHandlers(handlers)
    app.action(CHOOSE_ACTION)(ack=rollbacks.ack, lazy=[rollbacks.choose])
    app.view(REASON_MODAL)(ack=rollbacks.ack_reason, lazy=[rollbacks.submit])
